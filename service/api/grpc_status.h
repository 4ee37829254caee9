// The one place where an absl::Status becomes a grpc::Status.
#ifndef KEYVERIFIER_SERVICE_API_GRPC_STATUS_H_
#define KEYVERIFIER_SERVICE_API_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace keyverifier::api {

// Codes map one to one (both follow google.rpc.Code); the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

// "OK", "NOT_FOUND", ...: the label metrics carry.
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_GRPC_STATUS_H_
