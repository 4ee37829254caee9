// The certificate policy applied to OpenSSL client connections: the minimum
// protocol version on the SSL_CTX, and the policy as the certificate
// verifier, so that a handshake with a peer that fails the policy aborts
// before any request is sent.
//
// Usage: ApplyPolicy once per SSL_CTX; PrepareConnection on each SSL before
// SSL_connect, with a ConnectionCheck that outlives the handshake; after the
// handshake (successful or not) `check.verdict` says what the policy found.
// SNI is sent for DNS names only, never for IP literals.
//
// Thread-safety: the SSL_CTX may be shared by many connections on many
// threads once configured; each SSL and ConnectionCheck belongs to one
// connection. The policy must outlive every SSL_CTX it is applied to.
// Errors: InternalError when OpenSSL refuses a setting (named).
#ifndef KEYVERIFIER_SERVICE_TLS_SSL_POLICY_H_
#define KEYVERIFIER_SERVICE_TLS_SSL_POLICY_H_

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/tls/certificate_policy.h"

namespace keyverifier::tls {

absl::Status ApplyPolicy(const CertificatePolicy& policy, SSL_CTX* ctx);

struct ConnectionCheck {
  PeerName peer;  // the name the connection must reach
  absl::Time at;  // validation time (from the caller's clock)
  // The server's tls_fingerprints, for the MSC1711 fallback; may be null.
  const absl::flat_hash_set<std::string>* tls_fingerprints = nullptr;

  bool checked = false;  // the verifier ran
  Verdict verdict;       // its result
};

absl::Status PrepareConnection(SSL* ssl, ConnectionCheck* check);

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_SSL_POLICY_H_
