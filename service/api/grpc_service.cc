#include "service/api/grpc_service.h"

#include "absl/time/time.h"
#include "service/api/grpc_status.h"

namespace keyverifier::api {

template <typename Req, typename Resp>
grpc::ServerUnaryReactor* KeyVerifierService::Schedule(
    grpc::CallbackServerContext* context, const Req* request, Resp* response,
    absl::StatusOr<Resp> (Verifier::*method)(const Req&, absl::Time)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Time deadline = absl::FromChrono(context->deadline());
  bool queued = pool_.TrySubmit([this, reactor, request, response, method,
                                 deadline] {
    if (clock_.Now() >= deadline) {
      reactor->Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                   "deadline passed before the call was served"));
      return;
    }
    absl::StatusOr<Resp> result = (verifier_.*method)(*request, deadline);
    if (result.ok()) {
      *response = *std::move(result);
      reactor->Finish(grpc::Status::OK);
    } else {
      reactor->Finish(ToGrpcStatus(result.status()));
    }
  });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "verification queue is full; retry later"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* KeyVerifierService::VerifyServerKeys(
    grpc::CallbackServerContext* context,
    const v1::VerifyServerKeysRequest* request,
    v1::VerifyServerKeysResponse* response) {
  return Schedule(context, request, response, &Verifier::VerifyServerKeys);
}

grpc::ServerUnaryReactor* KeyVerifierService::VerifyEventSignature(
    grpc::CallbackServerContext* context,
    const v1::VerifyEventSignatureRequest* request, v1::EventVerdict* response) {
  return Schedule(context, request, response, &Verifier::VerifyEventSignature);
}

grpc::ServerUnaryReactor* KeyVerifierService::VerifyEvents(
    grpc::CallbackServerContext* context, const v1::VerifyEventsRequest* request,
    v1::VerifyEventsResponse* response) {
  return Schedule(context, request, response, &Verifier::VerifyEvents);
}

grpc::ServerUnaryReactor* KeyVerifierService::VerifyRequestAuth(
    grpc::CallbackServerContext* context,
    const v1::VerifyRequestAuthRequest* request,
    v1::VerifyRequestAuthResponse* response) {
  return Schedule(context, request, response, &Verifier::VerifyRequestAuth);
}

}  // namespace keyverifier::api
