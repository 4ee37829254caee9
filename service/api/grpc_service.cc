#include "service/api/grpc_service.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/time/time.h"
#include "service/api/grpc_status.h"

namespace keyverifier::api {

// One RPC method: how to accept its calls and how the Verifier answers them.
template <typename Req, typename Resp>
struct KeyVerifierService::Method {
  using Request = void (v1::KeyVerifier::AsyncService::*)(
      grpc::ServerContext*, Req*, grpc::ServerAsyncResponseWriter<Resp>*,
      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  const char* name;  // "/keyverifier.v1.KeyVerifier/...", as metrics label it
  Request request;
  void (Verifier::*run)(const Req&, absl::Time, Verifier::Reply<Resp>);
  // Answers without blocking, or nullopt; null for methods without one.
  std::optional<absl::StatusOr<Resp>> (Verifier::*fast)(const Req&);
  // `run` does no CPU work of its own before its lookups: started on the
  // polling thread instead of a worker.
  bool starts_inline = false;
  // For a method the Verifier does not serve: used when `run` is null.
  void (KeyVerifierService::*serve)(const Req&, absl::Time, Verifier::Reply<Resp>) = nullptr;
};

// The tag of every operation on a completion queue.
class KeyVerifierService::CallBase {
 public:
  virtual ~CallBase() = default;
  // An operation this call started is complete.
  virtual void Proceed(bool ok) = 0;
};

// One call, from waiting to be accepted until its Finish is done, when it
// reports method, status and latency to the observer and deletes itself.
template <typename Req, typename Resp>
class KeyVerifierService::Call final : public CallBase {
 public:
  Call(KeyVerifierService& service, const Method<Req, Resp>& method,
       grpc::ServerCompletionQueue* cq)
      : service_(service), method_(method), cq_(cq), responder_(&context_) {
    (service_.async_.*method_.request)(&context_, &request_, &responder_, cq_, cq_, this);
  }

  void Proceed(bool ok) override {
    if (!accepted_) {
      // ok false: the server is shutting down and no call came.
      if (!ok || !service_.Accept()) {
        delete this;
        return;
      }
      accepted_ = true;
      start_ = service_.clock_.Now();
      new Call(service_, method_, cq_);  // waits for the method's next call
      service_.Serve(this);
      return;
    }
    // Finish is done (ok false: the client went away before the answer).
    service_.observer_.OnRpc(method_.name, StatusCodeName(code_),
                             service_.clock_.Now() - start_);
    KeyVerifierService& service = service_;
    delete this;
    service.Finished();
  }

  // Sends the answer; exactly once per accepted call, from any thread.
  void Done(absl::StatusOr<Resp> result) {
    if (result.ok()) {
      response_ = *std::move(result);
      Done(grpc::Status::OK);
    } else {
      Done(ToGrpcStatus(result.status()));
    }
  }
  void Done(const grpc::Status& status) {
    code_ = status.error_code();
    if (held_bytes_ > 0) service_.Release(std::exchange(held_bytes_, 0));
    if (status.ok()) {
      responder_.Finish(response_, status, this);
    } else {
      responder_.FinishWithError(status, this);
    }
  }

  void set_held_bytes(size_t bytes) { held_bytes_ = bytes; }
  const Method<Req, Resp>& method() const { return method_; }
  const grpc::ServerContext& context() const { return context_; }
  const Req& request() const { return request_; }

 private:
  KeyVerifierService& service_;
  const Method<Req, Resp>& method_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  Req request_;
  Resp response_;
  grpc::ServerAsyncResponseWriter<Resp> responder_;
  bool accepted_ = false;
  size_t held_bytes_ = 0;  // released when answered
  absl::Time start_;
  grpc::StatusCode code_ = grpc::StatusCode::UNKNOWN;
};

KeyVerifierService::KeyVerifierService(Verifier& verifier, async::WorkerPool& pool,
                                       const Clock& clock,
                                       std::vector<std::string> allowed_client_names,
                                       observe::Observer& observer,
                                       absl::Duration max_call_time,
                                       size_t max_held_bytes)
    : verifier_(verifier),
      pool_(pool),
      clock_(clock),
      allowed_client_names_(std::move(allowed_client_names)),
      observer_(observer),
      max_call_time_(max_call_time),
      max_held_bytes_(max_held_bytes) {}

KeyVerifierService::~KeyVerifierService() { Stop(); }

void KeyVerifierService::Register(grpc::ServerBuilder& builder, int threads) {
  builder.RegisterService(&async_);
  for (int i = 0; i < std::max(1, threads); ++i) {
    queues_.push_back(builder.AddCompletionQueue());
  }
}

void KeyVerifierService::Start() {
  for (const auto& queue : queues_) {
    Listen(queue.get());
    threads_.emplace_back([this, cq = queue.get()] {
      // Named for top -H, perf and debuggers (at most 15 characters).
      pthread_setname_np(pthread_self(), "kv-grpc");
      Poll(cq);
    });
  }
}

void KeyVerifierService::Listen(grpc::ServerCompletionQueue* cq) {
  using S = v1::KeyVerifier::AsyncService;
  static const Method<v1::VerifyServerKeysRequest, v1::VerifyServerKeysResponse> kKeys{
      "/keyverifier.v1.KeyVerifier/VerifyServerKeys", &S::RequestVerifyServerKeys,
      &Verifier::VerifyServerKeys, &Verifier::TryVerifyServerKeys, true};
  static const Method<v1::VerifyEventSignatureRequest, v1::EventVerdict> kEvent{
      "/keyverifier.v1.KeyVerifier/VerifyEventSignature", &S::RequestVerifyEventSignature,
      &Verifier::VerifyEventSignature, &Verifier::TryVerifyEventSignature};
  static const Method<v1::VerifyEventsRequest, v1::VerifyEventsResponse> kEvents{
      "/keyverifier.v1.KeyVerifier/VerifyEvents", &S::RequestVerifyEvents,
      &Verifier::VerifyEvents, nullptr};
  static const Method<v1::VerifyRequestAuthRequest, v1::VerifyRequestAuthResponse> kAuth{
      "/keyverifier.v1.KeyVerifier/VerifyRequestAuth", &S::RequestVerifyRequestAuth,
      &Verifier::VerifyRequestAuth, nullptr};
  static const Method<v1::CheckCertificateRequest, v1::CheckCertificateResponse> kCert{
      "/keyverifier.v1.KeyVerifier/CheckCertificate", &S::RequestCheckCertificate,
      &Verifier::CheckCertificate, nullptr};
  static const Method<v1::DiagnoseServerRequest, v1::DiagnoseServerResponse> kDiagnose{
      "/keyverifier.v1.KeyVerifier/DiagnoseServer", &S::RequestDiagnoseServer, nullptr,
      nullptr, false, &KeyVerifierService::Diagnose};
  new Call(*this, kKeys, cq);
  new Call(*this, kDiagnose, cq);
  new Call(*this, kEvent, cq);
  new Call(*this, kEvents, cq);
  new Call(*this, kAuth, cq);
  new Call(*this, kCert, cq);
}

void KeyVerifierService::Poll(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CallBase*>(tag)->Proceed(ok);
}

template <typename Req, typename Resp>
void KeyVerifierService::Serve(Call<Req, Resp>* call) {
  if (!ClientAllowed(call->context())) {
    call->Done(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            "client certificate name is not on the allowlist"));
    return;
  }
  const Method<Req, Resp>& method = call->method();
  if (method.fast != nullptr) {
    if (std::optional<absl::StatusOr<Resp>> result = (verifier_.*method.fast)(call->request())) {
      call->Done(*std::move(result));
      return;
    }
  }
  // The client's deadline, and never more than the service's own limit.
  const absl::Time deadline = std::min(absl::FromChrono(call->context().deadline()),
                                       clock_.Now() + max_call_time_);
  // Its request stays in memory until it is answered.
  const size_t bytes = call->request().ByteSizeLong();
  if (!Hold(bytes)) {
    observer_.OnCallRefused("pending_bytes");
    call->Done(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "too many request bytes waiting to be served; retry later"));
    return;
  }
  call->set_held_bytes(bytes);
  auto run = [this, call, deadline] {
    if (clock_.Now() >= deadline) {
      call->Done(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                              "deadline passed before the call was served"));
      return;
    }
    // Answered from wherever the keys arrive; no thread waits for them.
    auto reply = [call](absl::StatusOr<Resp> r) { call->Done(std::move(r)); };
    if (call->method().run == nullptr) {
      return (this->*call->method().serve)(call->request(), deadline, std::move(reply));
    }
    (verifier_.*call->method().run)(call->request(), deadline, std::move(reply));
  };
  if (method.starts_inline) return run();
  size_t queued = 0;
  const bool taken = pool_.TrySubmit(std::move(run), &queued);
  observer_.OnWorkerQueue(queued, static_cast<size_t>(pool_.max_queued()));
  if (!taken) {
    observer_.OnCallRefused("queue_full");
    call->Done(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "verification queue is full; retry later"));
  }
}

void KeyVerifierService::Diagnose(const v1::DiagnoseServerRequest& request, absl::Time deadline,
                                  Verifier::Reply<v1::DiagnoseServerResponse> reply) {
  if (diagnoser_ == nullptr) {
    return reply(absl::UnimplementedError("DiagnoseServer is not served here"));
  }
  diagnoser_->Diagnose(request.server_name(), deadline, std::move(reply));
}

bool KeyVerifierService::Accept() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  ++in_flight_;
  return true;
}

void KeyVerifierService::Finished() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

bool KeyVerifierService::Hold(size_t bytes) {
  absl::MutexLock lock(&mu_);
  if (max_held_bytes_ > 0 && held_bytes_ + bytes > max_held_bytes_ && held_bytes_ > 0) {
    return false;  // (one call alone is always let through: its size was checked on receipt)
  }
  held_bytes_ += bytes;
  return true;
}

void KeyVerifierService::Release(size_t bytes) {
  absl::MutexLock lock(&mu_);
  held_bytes_ -= bytes;
}

void KeyVerifierService::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopping_ = true;
    // Calls still running finish their operations while the queues are
    // polled; none can start one after the queues shut down.
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &in_flight_));
    stopped_ = true;
  }
  for (const auto& queue : queues_) queue->Shutdown();
  if (threads_.empty()) {  // never started: drain here
    for (const auto& queue : queues_) Poll(queue.get());
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool KeyVerifierService::ClientAllowed(const grpc::ServerContext& context) const {
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

}  // namespace keyverifier::api
