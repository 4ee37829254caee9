#include "service/api/grpc_service.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include "absl/time/time.h"
#include "service/api/grpc_status.h"

namespace keyverifier::api {

bool KeyVerifierService::ClientAllowed(
    const grpc::CallbackServerContext& context) const {
  if (allowed_client_names_.empty()) return true;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return false;
  for (const char* property : {GRPC_PEER_DNS_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME}) {
    for (const grpc::string_ref& name : auth->FindPropertyValues(property)) {
      for (const std::string& allowed : allowed_client_names_) {
        if (name == allowed) return true;
      }
    }
  }
  return false;
}

template <typename Req, typename Resp>
grpc::ServerUnaryReactor* KeyVerifierService::Schedule(
    grpc::CallbackServerContext* context, const Req* request, Resp* response,
    absl::StatusOr<Resp> (Verifier::*method)(const Req&, absl::Time)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!ClientAllowed(*context)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "client certificate name is not on the allowlist"));
    return reactor;
  }
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

grpc::ServerUnaryReactor* KeyVerifierService::CheckCertificate(
    grpc::CallbackServerContext* context, const v1::CheckCertificateRequest* request,
    v1::CheckCertificateResponse* response) {
  return Schedule(context, request, response, &Verifier::CheckCertificate);
}

}  // namespace keyverifier::api
