// KeyVerifierService: the gRPC callback service. Each call is handed to the
// worker pool (CPU-heavy verification never runs on gRPC's threads) and
// finished with the Verifier's result mapped through ToGrpcStatus.
//
// A call whose deadline has passed before its turn fails with
// DEADLINE_EXCEEDED; a full worker queue gives RESOURCE_EXHAUSTED.
// Thread-safe. The Verifier and WorkerPool must outlive the service.
#ifndef KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_
#define KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_

#include <string>
#include <vector>

#include "keyverifier/v1/service.grpc.pb.h"
#include "service/api/verifier.h"
#include "service/api/worker_pool.h"
#include "service/clock/clock.h"

namespace keyverifier::api {

class KeyVerifierService final : public v1::KeyVerifier::CallbackService {
 public:
  // `allowed_client_names`: with mutual TLS, only clients whose certificate
  // has one of these subject alternative names (DNS or URI) may call; empty
  // allows every client the transport admitted.
  KeyVerifierService(Verifier& verifier, WorkerPool& pool, const Clock& clock,
                     std::vector<std::string> allowed_client_names = {})
      : verifier_(verifier),
        pool_(pool),
        clock_(clock),
        allowed_client_names_(std::move(allowed_client_names)) {}

  grpc::ServerUnaryReactor* VerifyServerKeys(
      grpc::CallbackServerContext* context,
      const v1::VerifyServerKeysRequest* request,
      v1::VerifyServerKeysResponse* response) override;
  grpc::ServerUnaryReactor* VerifyEventSignature(
      grpc::CallbackServerContext* context,
      const v1::VerifyEventSignatureRequest* request,
      v1::EventVerdict* response) override;
  grpc::ServerUnaryReactor* VerifyEvents(
      grpc::CallbackServerContext* context,
      const v1::VerifyEventsRequest* request,
      v1::VerifyEventsResponse* response) override;
  grpc::ServerUnaryReactor* VerifyRequestAuth(
      grpc::CallbackServerContext* context,
      const v1::VerifyRequestAuthRequest* request,
      v1::VerifyRequestAuthResponse* response) override;
  // The certificate policy is not part of this build yet: UNIMPLEMENTED.
  grpc::ServerUnaryReactor* CheckCertificate(
      grpc::CallbackServerContext* context,
      const v1::CheckCertificateRequest* request,
      v1::CheckCertificateResponse* response) override;

 private:
  // Runs `method` on the pool and finishes the call with its result.
  template <typename Req, typename Resp>
  grpc::ServerUnaryReactor* Schedule(
      grpc::CallbackServerContext* context, const Req* request, Resp* response,
      absl::StatusOr<Resp> (Verifier::*method)(const Req&, absl::Time));

  bool ClientAllowed(const grpc::CallbackServerContext& context) const;

  Verifier& verifier_;
  WorkerPool& pool_;
  const Clock& clock_;
  const std::vector<std::string> allowed_client_names_;
};

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_
