// Verifier: the service's operations on protos, over the signing core and a
// KeyRing. No gRPC types here beyond the generated messages, so the logic is
// tested without a server; grpc_service.cc only schedules and maps statuses.
//
// Thread-safe (stateless apart from its dependencies, which are thread-safe).
// Errors follow the API: InvalidArgumentError naming the field for unusable
// input; NotFound/Unavailable/DeadlineExceeded from the keyring when keys
// cannot be obtained. Signatures that do not verify are verdicts.
#ifndef KEYVERIFIER_SERVICE_API_VERIFIER_H_
#define KEYVERIFIER_SERVICE_API_VERIFIER_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyverifier/v1/service.pb.h"
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
           const tls::CertificateChecker* certificates = nullptr)
      : keys_(keys), clock_(clock), limits_(limits), observer_(observer),
        certificates_(certificates) {}

  absl::StatusOr<v1::VerifyServerKeysResponse> VerifyServerKeys(
      const v1::VerifyServerKeysRequest& request, absl::Time deadline);
  absl::StatusOr<v1::EventVerdict> VerifyEventSignature(
      const v1::VerifyEventSignatureRequest& request, absl::Time deadline);
  absl::StatusOr<v1::VerifyEventsResponse> VerifyEvents(
      const v1::VerifyEventsRequest& request, absl::Time deadline);
  absl::StatusOr<v1::VerifyRequestAuthResponse> VerifyRequestAuth(
      const v1::VerifyRequestAuthRequest& request, absl::Time deadline);
  absl::StatusOr<v1::CheckCertificateResponse> CheckCertificate(
      const v1::CheckCertificateRequest& request, absl::Time deadline);

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
  // Parses and hashes one event and gathers its signers' keys. With
  // `memory_only`, a key not in memory sets *slow and returns early.
  absl::StatusOr<Pending> Prepare(const v1::VerifyEventSignatureRequest& request,
                                  absl::Time deadline, KeyMemo& memo, bool memory_only,
                                  bool* slow);
  // The signature checks and the verdict.
  absl::StatusOr<v1::EventVerdict> Finish(const Pending& pending);
  absl::StatusOr<v1::EventVerdict> VerifyEvent(
      const v1::VerifyEventSignatureRequest& request, absl::Time deadline,
      KeyMemo& memo, bool memory_only = false, bool* slow = nullptr);
  // GetKeys, or with `memory_only` TryGetKeysFromMemory (setting *slow when
  // the keys are not in memory).
  absl::StatusOr<keyring::KeyResult> Lookup(const keyring::KeyQuery& query,
                                            absl::Time deadline, bool memory_only, bool* slow);
  absl::StatusOr<v1::VerifyServerKeysResponse> ServerKeys(
      const v1::VerifyServerKeysRequest& request, absl::Time deadline, bool memory_only,
      bool* slow);

  keyring::KeyRing& keys_;
  const Clock& clock_;
  VerifierLimits limits_;
  observe::Observer& observer_;
  const tls::CertificateChecker* const certificates_;
};

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_VERIFIER_H_
