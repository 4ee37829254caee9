// KeyVerifierService: the gRPC callback service. Each call is handed to the
// worker pool (CPU-heavy verification never runs on gRPC's threads) and
// finished with the Verifier's result mapped through ToGrpcStatus.
//
// A call whose deadline has passed before its turn fails with
// DEADLINE_EXCEEDED; a full worker queue gives RESOURCE_EXHAUSTED.
// Thread-safe. The Verifier and WorkerPool must outlive the service.
#ifndef KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_
#define KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_

#include <optional>
#include <string>
#include <vector>

#include "keyverifier/v1/service.grpc.pb.h"
#include "service/api/verifier.h"
#include "service/api/worker_pool.h"
#include "service/clock/clock.h"
#include "service/observe/observer.h"

namespace keyverifier::api {

class KeyVerifierService final : public v1::KeyVerifier::CallbackService {
 public:
  // `allowed_client_names`: with mutual TLS, only clients whose certificate
  // has one of these subject alternative names (DNS or URI) may call; empty
  // allows every client the transport admitted.
  // Every call is reported to `observer` (OnRpc: method, status code,
  // latency) when it is done: the one place per-RPC metrics come from.
  KeyVerifierService(Verifier& verifier, WorkerPool& pool, const Clock& clock,
                     std::vector<std::string> allowed_client_names = {},
                     observe::Observer& observer = observe::NoopObserver())
      : verifier_(verifier),
        pool_(pool),
        clock_(clock),
        allowed_client_names_(std::move(allowed_client_names)),
        observer_(observer) {}

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
  grpc::ServerUnaryReactor* CheckCertificate(
      grpc::CallbackServerContext* context,
      const v1::CheckCertificateRequest* request,
      v1::CheckCertificateResponse* response) override;

 private:
  // Runs `method` on the pool and finishes the call with its result. With
  // `fast`, first tries it on the calling (gRPC) thread: a single item whose
  // keys are all in memory costs about one ed25519 verify, less than the
  // hop to the pool; whatever might block or is a batch goes to the pool.
  template <typename Req, typename Resp>
  grpc::ServerUnaryReactor* Schedule(
      const char* method_name, grpc::CallbackServerContext* context, const Req* request,
      Resp* response,
      absl::StatusOr<Resp> (Verifier::*method)(const Req&, absl::Time),
      std::optional<absl::StatusOr<Resp>> (Verifier::*fast)(const Req&) = nullptr);

  class MeteredReactor;

  bool ClientAllowed(const grpc::CallbackServerContext& context) const;

  Verifier& verifier_;
  WorkerPool& pool_;
  const Clock& clock_;
  const std::vector<std::string> allowed_client_names_;
  observe::Observer& observer_;
};

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_
