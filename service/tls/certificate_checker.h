// CertificateChecker: CheckCertificate's logic. Either judges a chain the
// caller offers, or connects to the server as the key fetcher would (server
// discovery, the outbound address filter, SNI for the delegated name) and
// judges the chain it presents.
//
// Thread-safe; the policy, discovery, filter and clock are borrowed.
// Errors (not verdicts): InvalidArgumentError for a bad server name or an
// unparseable chain is a verdict of its own (kMalformed); NotFoundError /
// UnavailableError / PermissionDeniedError when the server could not be
// resolved or reached (the address filter) in live mode.
#ifndef KEYVERIFIER_SERVICE_TLS_CERTIFICATE_CHECKER_H_
#define KEYVERIFIER_SERVICE_TLS_CERTIFICATE_CHECKER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/async/callback.h"
#include "service/clock/clock.h"
#include "service/net/discovery.h"
#include "service/net/http_client.h"
#include "service/net/ip_filter.h"
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
  struct Options {
    absl::Duration connect_timeout = absl::Seconds(5);
    // Runs live mode's handshakes; null: live mode unavailable.
    net::FetchEngine* engine = nullptr;
  };
  // `fingerprints` (may be null) feeds the MSC1711 fallback, as for key
  // fetching.
  CertificateChecker(const CertificatePolicy& policy, net::ServerDiscovery* discovery,
                     const net::IpFilter& filter, const Clock& clock, Options options,
                     FingerprintSource fingerprints = nullptr)
      : policy_(policy), discovery_(discovery), filter_(filter), clock_(clock),
        options_(options), fingerprints_(std::move(fingerprints)) {}

  // `chain`: PEM (leaf first) or the DER certificates, leaf first.
  absl::StatusOr<CertificateCheck> CheckOffered(absl::string_view server_name,
                                                const std::vector<std::string>& chain,
                                                absl::Time at) const;
  // Resolves `server_name` (with `port` when not 0, as "host:port") and
  // checks what its first reachable address presents. Asynchronous: the
  // handshakes run on the fetch engine and `done` runs once, from there.
  void CheckLive(absl::string_view server_name, uint16_t port, absl::Time at,
                 absl::Time deadline, async::Callback<CertificateCheck> done) const;
  absl::StatusOr<CertificateCheck> CheckLiveAndWait(absl::string_view server_name,
                                                    uint16_t port, absl::Time at,
                                                    absl::Time deadline) const {
    return async::Wait<CertificateCheck>([&](async::Callback<CertificateCheck> cb) {
      CheckLive(server_name, port, at, deadline, std::move(cb));
    });
  }

 private:
  struct Live;
  void TryEndpoint(std::shared_ptr<Live> live, size_t i) const;

  const CertificatePolicy& policy_;
  net::ServerDiscovery* const discovery_;  // null: live mode unavailable
  const net::IpFilter& filter_;
  const Clock& clock_;
  const Options options_;
  const FingerprintSource fingerprints_;
};

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_CERTIFICATE_CHECKER_H_
