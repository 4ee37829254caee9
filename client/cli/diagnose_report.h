// How keyverifier_cli shows a DiagnoseServer report: for humans (sections
// for discovery, every address, the key response, notaries and the version,
// then the findings with their fixes) or as one JSON line (the response's
// proto3 JSON form). Pure; thread-safe.
#ifndef KEYVERIFIER_CLIENT_CLI_DIAGNOSE_REPORT_H_
#define KEYVERIFIER_CLIENT_CLI_DIAGNOSE_REPORT_H_

#include <string>

#include "keyverifier/v1/service.pb.h"

namespace keyverifier::cli {

std::string DiagnoseText(const v1::DiagnoseServerResponse& report);
std::string DiagnoseJson(const v1::DiagnoseServerResponse& report);

}  // namespace keyverifier::cli

#endif  // KEYVERIFIER_CLIENT_CLI_DIAGNOSE_REPORT_H_
