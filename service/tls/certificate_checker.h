// CertificateChecker: CheckCertificate's logic. Either judges a chain the
// caller offers, or connects to the server as the key fetcher would (the
// federation client: server discovery, the outbound address filter, SNI for
// the delegated name) and judges the chain it presents in the handshake.
//
// Thread-safe; the policy, client and clock are borrowed.
// Errors (not verdicts; an unparseable chain is a verdict of its own,
// kMalformed): NotFoundError /
// UnavailableError / PermissionDeniedError when the server could not be
// resolved or reached (the address filter) in live mode.
#ifndef KEYVERIFIER_SERVICE_TLS_CERTIFICATE_CHECKER_H_
#define KEYVERIFIER_SERVICE_TLS_CERTIFICATE_CHECKER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/async/callback.h"
#include "service/clock/clock.h"
#include "service/core/server_name.h"
#include "service/net/federation_client.h"
#include "service/tls/certificate_policy.h"
#include "service/tls/policy_peer_verifier.h"

namespace keyverifier::tls {

struct CertificateCheck {
  Verdict verdict;
  std::string checked_name;  // the name the certificate had to match
  std::string endpoint;      // live mode: the address connected to
};

class CertificateChecker {
 public:
  // `client` (may be null: no live mode) makes live mode's handshakes;
  // `fingerprints` (may be null) feeds the MSC1711 fallback, as for key
  // fetching.
  CertificateChecker(const CertificatePolicy& policy, net::FederationClient* client,
                     const Clock& clock, FingerprintSource fingerprints = nullptr)
      : policy_(policy), client_(client), clock_(clock), fingerprints_(std::move(fingerprints)) {}

  // `chain`: PEM (leaf first) or the DER certificates, leaf first.
  absl::StatusOr<CertificateCheck> CheckOffered(const core::ServerName& server_name,
                                                const std::vector<std::string>& chain,
                                                absl::Time at) const;
  // Judges a chain a peer presented in a handshake (DER, leaf first, with the
  // SCT lists it delivered) for `name`, the TLS name discovery gave: what a
  // report on every address of a server needs.
  absl::StatusOr<CertificateCheck> CheckPresented(const std::string& name,
                                                  const std::vector<std::string>& chain_der,
                                                  const std::vector<std::string>& delivered_scts,
                                                  absl::Time at) const {
    return Judge(chain_der, delivered_scts, name, at);
  }
  // Resolves `server_name` (with `port` when not 0, as "host:port") and
  // checks what its first reachable address presents. Asynchronous: the
  // handshakes run on the fetch engine and `done` runs once, from there.
  void CheckLive(const core::ServerName& server_name, uint16_t port, absl::Time at,
                 absl::Time deadline, async::Callback<CertificateCheck> done) const;
  absl::StatusOr<CertificateCheck> CheckLiveAndWait(const core::ServerName& server_name,
                                                    uint16_t port, absl::Time at,
                                                    absl::Time deadline) const {
    return async::Wait<CertificateCheck>([&](async::Callback<CertificateCheck> cb) {
      CheckLive(server_name, port, at, deadline, std::move(cb));
    });
  }

 private:
  // The policy's verdict on `chain` (PEM or DER) for `name` at `at`
  // (InfinitePast: the clock's now).
  absl::StatusOr<CertificateCheck> Judge(const std::vector<std::string>& chain,
                                         const std::vector<std::string>& delivered_scts,
                                         const std::string& name, absl::Time at) const;

  const CertificatePolicy& policy_;
  net::FederationClient* const client_;  // null: live mode unavailable
  const Clock& clock_;
  const FingerprintSource fingerprints_;
};

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_CERTIFICATE_CHECKER_H_
