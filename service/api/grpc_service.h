// KeyVerifierService: the gRPC service, on gRPC's asynchronous
// (completion-queue) API with its own polling threads.
//
// Each call is served on the polling thread that received it when it cannot
// block (a single item whose keys are in memory), and otherwise handed to the
// worker pool, so CPU-heavy work never holds up a completion queue. A call
// waiting for keys holds no thread: the Verifier answers it from wherever the
// keys arrive (the keyring's threads), and Finish may run on any thread.
// Results are mapped to gRPC status codes through ToGrpcStatus.
//
// Every call's deadline is the client's, and at most `max_call_time`. A call
// whose deadline has passed before its turn fails with DEADLINE_EXCEEDED; a
// full worker queue gives RESOURCE_EXHAUSTED, and so does a call that would
// take the request bytes held by calls not yet answered (queued, or waiting
// for keys) beyond `max_held_bytes`.
//
// Its own polling threads, rather than gRPC's callback API: in the gRPC this
// is built against, the callback API's shared threads sleep 100 ms without
// polling after each idle second, so the first calls after a quiet moment
// waited up to 100 ms.
//
// Use: Register with the ServerBuilder, BuildAndStart, Start; to stop,
// grpc::Server::Shutdown, then Stop (or the destructor). The Verifier and
// WorkerPool must outlive the service; the pool must keep running until
// Stop has returned.
#ifndef KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_
#define KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_

#include <grpcpp/server_builder.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "keyverifier/v1/service.grpc.pb.h"
#include "service/api/verifier.h"
#include "service/async/worker_pool.h"
#include "service/clock/clock.h"
#include "service/diagnose/diagnoser.h"
#include "service/observe/observer.h"

namespace keyverifier::api {

class KeyVerifierService {
 public:
  // `allowed_client_names`: with mutual TLS, only clients whose certificate
  // has one of these subject alternative names (DNS or URI) may call; empty
  // allows every client the transport admitted.
  // Every call is reported to `observer` (OnRpc: method, status code,
  // latency) when it is done: the one place per-RPC metrics come from.
  KeyVerifierService(Verifier& verifier, async::WorkerPool& pool, const Clock& clock,
                     std::vector<std::string> allowed_client_names = {},
                     observe::Observer& observer = observe::NoopObserver(),
                     absl::Duration max_call_time = absl::Seconds(60),
                     size_t max_held_bytes = size_t{256} << 20);
  ~KeyVerifierService();
  KeyVerifierService(const KeyVerifierService&) = delete;
  KeyVerifierService& operator=(const KeyVerifierService&) = delete;

  // Serves DiagnoseServer with `diagnoser` (borrowed; it must outlive the
  // service); without one the method answers UNIMPLEMENTED. Call before
  // Start.
  void set_diagnoser(diagnose::Diagnoser* diagnoser) { diagnoser_ = diagnoser; }

  // Adds the service and `threads` completion queues (at least one) to
  // `builder`. Call once, before builder.BuildAndStart().
  void Register(grpc::ServerBuilder& builder, int threads);
  // Starts the polling threads; call after builder.BuildAndStart().
  void Start();
  // Call after grpc::Server::Shutdown has returned: waits until every call
  // the service accepted is finished, then stops the polling threads.
  // Idempotent.
  void Stop();

 private:
  class CallBase;
  template <typename Req, typename Resp>
  class Call;
  template <typename Req, typename Resp>
  struct Method;

  // Accepts the first call of every method on `cq`.
  void Listen(grpc::ServerCompletionQueue* cq);
  void Poll(grpc::ServerCompletionQueue* cq);
  // Serves an accepted call: on this thread if `Method::fast` can answer
  // without blocking, otherwise on the pool.
  template <typename Req, typename Resp>
  void Serve(Call<Req, Resp>* call);

  // Book-keeping of accepted calls, so Stop shuts the completion queues down
  // only once no call can start another operation on them.
  bool Accept();  // false once stopping: the call is dropped
  void Finished();
  // Request bytes of calls handed on and not yet answered: Hold fails
  // (false) when `bytes` more would exceed max_held_bytes_.
  bool Hold(size_t bytes);
  void Release(size_t bytes);

  bool ClientAllowed(const grpc::ServerContext& context) const;
  // DiagnoseServer's `run`: the Diagnoser, not the Verifier, answers it.
  void Diagnose(const v1::DiagnoseServerRequest& request, absl::Time deadline,
                Verifier::Reply<v1::DiagnoseServerResponse> reply);

  Verifier& verifier_;
  diagnose::Diagnoser* diagnoser_ = nullptr;
  async::WorkerPool& pool_;
  const Clock& clock_;
  const std::vector<std::string> allowed_client_names_;
  observe::Observer& observer_;
  const absl::Duration max_call_time_;
  const size_t max_held_bytes_;

  v1::KeyVerifier::AsyncService async_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_GRPC_SERVICE_H_
