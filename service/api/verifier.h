// Verifier: the service's operations on protos, over the signing core and a
// KeyRing. No gRPC types here beyond the generated messages, so the logic is
// tested without a server; grpc_service.cc only schedules and maps statuses.
//
// Asynchronous: each operation returns at once and answers through its
// callback exactly once. Key lookups never hold the calling thread; once the
// keys are there, the signature checks run on the `cpu` executor (the
// bounded worker pool), or inline when none is given. A batch asks the
// keyring for every server it lacks at once. The request must stay alive
// until the callback has run.
//
// Thread-safe (stateless apart from its dependencies, which are thread-safe).
// Errors follow the API: InvalidArgumentError naming the field for unusable
// input; NotFound/Unavailable/DeadlineExceeded from the keyring when keys
// cannot be obtained. Signatures that do not verify are verdicts.
#ifndef KEYVERIFIER_SERVICE_API_VERIFIER_H_
#define KEYVERIFIER_SERVICE_API_VERIFIER_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyverifier/v1/service.pb.h"
#include "service/async/callback.h"
#include "service/clock/clock.h"
#include "service/keyring/keyring.h"
#include "service/observe/observer.h"
#include "service/tls/certificate_checker.h"

namespace keyverifier::api {

struct VerifierLimits {
  size_t max_events_per_batch = 1000;
  size_t max_event_bytes = 65536;  // the spec's PDU size limit
};

class Verifier {
 public:
  // `certificates` may be null: CheckCertificate then fails with
  // FailedPreconditionError.
  Verifier(keyring::KeyRing& keys, const Clock& clock, VerifierLimits limits = {},
           observe::Observer& observer = observe::NoopObserver(),
           const tls::CertificateChecker* certificates = nullptr,
           async::Executor* cpu = nullptr)
      : keys_(keys), clock_(clock), limits_(limits), observer_(observer),
        certificates_(certificates), cpu_(cpu) {}

  template <typename T>
  using Reply = async::Callback<T>;

  void VerifyServerKeys(const v1::VerifyServerKeysRequest& request, absl::Time deadline,
                        Reply<v1::VerifyServerKeysResponse> done);
  void VerifyEventSignature(const v1::VerifyEventSignatureRequest& request,
                            absl::Time deadline, Reply<v1::EventVerdict> done);
  void VerifyEvents(const v1::VerifyEventsRequest& request, absl::Time deadline,
                    Reply<v1::VerifyEventsResponse> done);
  void VerifyRequestAuth(const v1::VerifyRequestAuthRequest& request, absl::Time deadline,
                         Reply<v1::VerifyRequestAuthResponse> done);
  void CheckCertificate(const v1::CheckCertificateRequest& request, absl::Time deadline,
                        Reply<v1::CheckCertificateResponse> done);

  // Blocking forms of the above, for tools and tests.
  template <typename Resp, typename Req>
  absl::StatusOr<Resp> Wait(void (Verifier::*method)(const Req&, absl::Time, Reply<Resp>),
                            const Req& request, absl::Time deadline) {
    return async::Wait<Resp>(
        [&](Reply<Resp> cb) { (this->*method)(request, deadline, std::move(cb)); });
  }

  // The same answers when every key needed is already in memory, without
  // blocking on the store or the network; nullopt when the call must take
  // the slow path. Lets the service answer cheap calls on the gRPC thread.
  std::optional<absl::StatusOr<v1::VerifyServerKeysResponse>> TryVerifyServerKeys(
      const v1::VerifyServerKeysRequest& request);
  std::optional<absl::StatusOr<v1::EventVerdict>> TryVerifyEventSignature(
      const v1::VerifyEventSignatureRequest& request);

 private:
  class KeyMemo;
  struct Pending;
  struct Batch;
  struct AuthHeader;
  // The key lookup one Authorization header needs, if any.
  static std::optional<keyring::KeyQuery> AuthQuery(const AuthHeader& header,
                                                    absl::string_view destination,
                                                    int64_t now_ms);
  // Parses and hashes one event and gathers its signers' keys from the memo
  // or memory; the queries for keys not in memory go to *missing (null:
  // memory only, and a missing key sets *slow).
  absl::StatusOr<Pending> Prepare(const v1::VerifyEventSignatureRequest& request,
                                  KeyMemo& memo, std::vector<keyring::KeyQuery>* missing,
                                  bool* slow);
  // The signature checks and the verdict.
  absl::StatusOr<v1::EventVerdict> Finish(const Pending& pending);
  // Every event of a batch: prepared, the keys missing from memory looked up
  // together, then checked (on the cpu executor).
  void VerifyBatch(std::vector<const v1::VerifyEventSignatureRequest*> events,
                   absl::Time deadline,
                   absl::AnyInvocable<void(std::vector<absl::StatusOr<v1::EventVerdict>>)> done);
  // Checks `events` of `batch` (their keys are in) and answers the batch
  // when they were its last.
  void CheckReady(std::shared_ptr<Batch> batch, std::vector<size_t> events);
  void OnCpu(async::Task task);
  // What a caller is told of an error from below (fetching, the store,
  // discovery): for server-side failures (UNAVAILABLE, INTERNAL, DATA_LOSS,
  // UNKNOWN, and PERMISSION_DENIED from the outbound rules) `context`, the
  // kind of failure and an id, the details (addresses, transport and
  // database particulars) going to the observer under that id; anything
  // else as it is, after `context`.
  absl::Status ForCaller(absl::string_view context, const absl::Status& error);
  absl::StatusOr<v1::VerifyServerKeysResponse> ToResponse(
      const keyring::KeyQuery& query, absl::StatusOr<keyring::KeyResult> keys);
  absl::StatusOr<v1::VerifyRequestAuthResponse> AuthVerdict(
      const v1::VerifyRequestAuthRequest& request, const std::vector<AuthHeader>& headers,
      const std::vector<absl::StatusOr<keyring::KeyResult>>& keys);
  absl::StatusOr<v1::CheckCertificateResponse> CertificateResponse(
      absl::StatusOr<tls::CertificateCheck> check);

  keyring::KeyRing& keys_;
  const Clock& clock_;
  VerifierLimits limits_;
  observe::Observer& observer_;
  const tls::CertificateChecker* const certificates_;
  async::Executor* const cpu_;
};

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_VERIFIER_H_
