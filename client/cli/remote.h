// The remote subcommands of keyverifier_cli: calls to a running service.
//
//   keys SERVER [--min-valid-until MS]
//   verify-event --target HOST:PORT --room-version V [FILE]
//   verify-events --room-version V FILE...
//   check-cert SERVER [--chain FILE.pem] [--port N]
//   diagnose SERVER (exit 0 when federation with SERVER works, 1 when not)
//   health
// Common flags: --target HOST:PORT (default 127.0.0.1:8470), --ca FILE,
// --cert FILE, --key FILE, --server-name NAME (TLS), --timeout-ms N, --json.
// Output is for humans unless --json (one JSON line per result). Exit codes:
// 0 valid / serving, 1 invalid or valid_but_redacted / not serving, 2 unusable
// input or service unreachable.
#ifndef KEYVERIFIER_CLIENT_CLI_REMOTE_H_
#define KEYVERIFIER_CLIENT_CLI_REMOTE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "client/cli/offline.h"

namespace keyverifier::cli {

bool IsRemoteCommand(absl::string_view name);
std::string RemoteUsage();

// verify-event is remote when --target is given, offline otherwise.
bool WantsRemote(absl::string_view name, const std::vector<std::string>& argv);

CommandResult RunRemoteCommand(absl::string_view name,
                               const std::vector<std::string>& argv,
                               const Environment& env);

}  // namespace keyverifier::cli

#endif  // KEYVERIFIER_CLIENT_CLI_REMOTE_H_
