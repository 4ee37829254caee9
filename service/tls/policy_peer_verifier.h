// PolicyPeerVerifier: the certificate policy as the HTTP client's judge of
// every federation TLS handshake (the key fetcher's and .well-known's).
//
// Validation time comes from the clock; the name is the one server
// discovery chose (server name or delegated name, never an SRV target). A
// rejection is PermissionDeniedError listing the policy's reasons. The
// minimum TLS version comes from the policy's options. Thread-safe; the
// policy, clock and observer are borrowed.
#ifndef KEYVERIFIER_SERVICE_TLS_POLICY_PEER_VERIFIER_H_
#define KEYVERIFIER_SERVICE_TLS_POLICY_PEER_VERIFIER_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_set.h"

#include "service/clock/clock.h"
#include "service/net/peer_verifier.h"
#include "service/observe/observer.h"
#include "service/tls/certificate_policy.h"

namespace keyverifier::tls {

// The MSC1711 transition fallback's input: the SHA-256 digests (raw 32
// bytes) that verified key responses of the server behind `tls_name` list in
// their tls_fingerprints. Called only when the fallback is enabled and a
// chain fails; must be thread-safe.
using FingerprintSource =
    std::function<absl::flat_hash_set<std::string>(absl::string_view tls_name)>;

class PolicyPeerVerifier final : public net::PeerVerifier {
 public:
  // Every verdict, fallback acceptances and CT report-mode misses are
  // reported to `observer` (counted, and the last two logged, by the
  // service's).
  PolicyPeerVerifier(const CertificatePolicy& policy, const Clock& clock,
                     FingerprintSource fingerprints = nullptr,
                     observe::Observer& observer = observe::NoopObserver())
      : policy_(policy), clock_(clock), fingerprints_(std::move(fingerprints)),
        observer_(observer) {}

  absl::Status VerifyPeer(const std::vector<std::string>& chain_der,
                          absl::string_view expected_name) const override {
    return VerifyPeer(chain_der, {}, expected_name);
  }
  absl::Status VerifyPeer(const std::vector<std::string>& chain_der,
                          const std::vector<std::string>& delivered_scts,
                          absl::string_view expected_name) const override;
  // With Certificate Transparency on, also asks servers for SCTs in the
  // handshake (TLS extension and stapled OCSP).
  absl::Status ConfigureContext(SSL_CTX* ctx) const override;

 private:
  const CertificatePolicy& policy_;
  const Clock& clock_;
  const FingerprintSource fingerprints_;
  observe::Observer& observer_;
};

// "hostname_mismatch: ...; expired: ..." for a verdict's reasons.
std::string ReasonsText(const Verdict& verdict);

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_POLICY_PEER_VERIFIER_H_
