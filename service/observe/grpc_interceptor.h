// A gRPC server interceptor that records every call's method, status code and
// latency in Metrics, so no handler carries metrics code.
#ifndef KEYVERIFIER_SERVICE_OBSERVE_GRPC_INTERCEPTOR_H_
#define KEYVERIFIER_SERVICE_OBSERVE_GRPC_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include "service/clock/clock.h"
#include "service/observe/metrics.h"

namespace keyverifier::observe {

class MetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` and `clock` must outlive the server.
  MetricsInterceptorFactory(Metrics& metrics, const Clock& clock)
      : metrics_(metrics), clock_(clock) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics& metrics_;
  const Clock& clock_;
};

// "OK", "INVALID_ARGUMENT", ... as in the gRPC status code names.
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace keyverifier::observe

#endif  // KEYVERIFIER_SERVICE_OBSERVE_GRPC_INTERCEPTOR_H_
