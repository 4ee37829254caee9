// Rules for server certificate chains that OpenSSL's verifier does not
// enforce but a federation peer's certificate must meet: the CA/Browser
// Forum baseline's profile where it concerns names, keys and extensions,
// and RFC 5280 requirements OpenSSL leaves to the application.
//
// Thread-safe (pure functions over the chain). No errors: each violation is
// appended as a Finding naming the certificate and the rule.
#ifndef KEYVERIFIER_SERVICE_TLS_WEBPKI_CHECKS_H_
#define KEYVERIFIER_SERVICE_TLS_WEBPKI_CHECKS_H_

#include <vector>

#include "absl/time/time.h"
#include "service/tls/openssl_util.h"
#include "service/tls/peer_name.h"
#include "service/tls/public_suffix.h"
#include "service/tls/verdict.h"

namespace keyverifier::tls {

struct WebPkiOptions {
  int min_rsa_bits = 2048;
  // When set, a wildcard SAN directly under a public suffix ("*.co.uk") is
  // refused.
  const PublicSuffixList* public_suffixes = nullptr;
};

// `chain`: leaf first, as built by the verifier; `anchored` says whether the
// last entry is the trust anchor (from the trust store). Checks every
// certificate's validity at `at` (notBefore and notAfter both inclusive, at
// whole seconds), keys, signatures (except the anchor's self-signature),
// serial numbers and extensions, the leaf's profile (not a CA, serverAuth
// EKU, well-formed SANs, no wildcard over a public suffix), and that `peer` itself lies
// inside every issuer's name constraints.
void CheckWebPkiRules(STACK_OF(X509) * chain, bool anchored, const PeerName& peer,
                      absl::Time at, const WebPkiOptions& options,
                      std::vector<Finding>* out);

// True if `name` is a host name in preferred name syntax (letters, digits,
// hyphens; labels 1-63 characters, not starting or ending with a hyphen),
// optionally with "*." as the whole left-most label when `allow_wildcard`.
bool IsValidDnsSan(absl::string_view name, bool allow_wildcard);

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_WEBPKI_CHECKS_H_
