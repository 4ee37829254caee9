// PeerVerifier: the seam between outbound HTTPS and the certificate policy.
//
// The HTTP client hands every TLS handshake's presented chain to a
// PeerVerifier, which alone decides whether the peer is acceptable for the
// expected name (the server name or delegated name, never an SRV target).
// The federation certificate policy (service/tls) implements it; tests may
// use AcceptAnyPeer. Implementations are thread-safe.
#ifndef KEYVERIFIER_SERVICE_NET_PEER_VERIFIER_H_
#define KEYVERIFIER_SERVICE_NET_PEER_VERIFIER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace keyverifier::net {

class PeerVerifier {
 public:
  virtual ~PeerVerifier() = default;
  // `chain_der`: the certificates the peer sent, leaf first. OK accepts;
  // otherwise the status (PermissionDeniedError or UnavailableError) says
  // why, and the handshake is aborted.
  virtual absl::Status VerifyPeer(const std::vector<std::string>& chain_der,
                                  absl::string_view expected_name) const = 0;
  // The same, with the Certificate Transparency SCT lists the server
  // delivered in the handshake (TLS extension, stapled OCSP), TLS-encoded.
  // Verifiers that do not judge CT ignore them.
  virtual absl::Status VerifyPeer(const std::vector<std::string>& chain_der,
                                  const std::vector<std::string>& delivered_scts,
                                  absl::string_view expected_name) const {
    return VerifyPeer(chain_der, expected_name);
  }
  // Applies connection settings (minimum TLS version, ...) to a new context.
  virtual absl::Status ConfigureContext(SSL_CTX* ctx) const = 0;
};

// Accepts every peer, TLS 1.2 or later. Only for tests.
class AcceptAnyPeer final : public PeerVerifier {
 public:
  absl::Status VerifyPeer(const std::vector<std::string>&,
                          absl::string_view) const override {
    return absl::OkStatus();
  }
  absl::Status ConfigureContext(SSL_CTX* ctx) const override;
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_PEER_VERIFIER_H_
