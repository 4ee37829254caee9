// The MSC1711 certificate policy for federation TLS: is this chain good
// enough for this peer name at this time? Used by CheckCertificate and by
// every outbound HTTPS connection (through policy_peer_verifier.h).
//
// On top of OpenSSL's X.509 verification (strict mode, the given time, the
// configured roots, partial chains ending in any trusted certificate) it
// enforces what a federation peer must satisfy: the name only from subject
// alternative names (never the subject CN), wildcards only as the whole
// left-most label, IP literals only against IP SANs, the serverAuth EKU on
// the leaf, no CA certificate as the leaf, RSA keys of at least 2048 bits,
// no SHA-1/MD5 signatures, and the subscriber-certificate rules of the
// CA/Browser Forum baseline where they concern names and extensions.
// OpenSSL builds one path; when it fails, other paths through the presented
// intermediates to any trusted certificate are tried (bounded), so a
// cross-signed or partly expired hierarchy still verifies.
//
// Whitelisted peers (domain globs, CIDR ranges) skip the checks; the MSC1711
// transition fallback accepts a failing certificate whose SHA-256 is among
// the server's published tls_fingerprints, before a deadline.
//
// Thread-safety: a CertificatePolicy is immutable after Create and Check may
// run on many threads. Errors: Create returns InvalidArgumentError /
// NotFoundError naming the bad option (glob, CIDR, CA file, public suffix
// list, CT log list, version). Check
// never fails: a certificate that does not pass is a Verdict with reasons.
#ifndef KEYVERIFIER_SERVICE_TLS_CERTIFICATE_POLICY_H_
#define KEYVERIFIER_SERVICE_TLS_CERTIFICATE_POLICY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/tls/ct_policy.h"
#include "service/tls/openssl_util.h"
#include "service/tls/peer_name.h"
#include "service/tls/public_suffix.h"
#include "service/tls/trust_store.h"
#include "service/tls/verdict.h"
#include "service/tls/whitelist.h"

namespace keyverifier::tls {

enum class CtMode { kOff, kReport, kEnforce };

struct CertificatePolicyOptions {
  // Where roots come from; ignored when `trust_store` is set.
  TrustStoreOptions trust;
  // A ready store (shared between policies, or built per request).
  std::shared_ptr<const TrustStore> trust_store;

  // Domain globs and CIDR ranges whose certificates are not checked.
  std::vector<std::string> whitelist;

  // MSC1711 transition: accept a failing certificate whose SHA-256 is among
  // the fingerprints the caller passes, while the validation time is before
  // `fingerprint_fallback_until`. Off by default.
  bool fingerprint_fallback = false;
  absl::Time fingerprint_fallback_until = absl::InfinitePast();

  // Lowest TLS version a connection may negotiate (TLS1_2_VERSION or
  // TLS1_3_VERSION). Enforced by policy_peer_verifier.h and, when the caller passes
  // the negotiated version, by Check.
  int min_tls_version = TLS1_2_VERSION;

  // Smallest RSA modulus accepted anywhere in the chain.
  int min_rsa_bits = 2048;

  // Wildcard SANs directly under a public suffix ("*.co.uk") are refused.
  // The list is read from this file unless `public_suffixes` is set; both
  // empty disables the check.
  std::string public_suffix_file = kDebianPublicSuffixList;
  std::shared_ptr<const PublicSuffixList> public_suffixes;

  // Certificate Transparency on the leaf's embedded SCTs: kReport puts an
  // unmet requirement in Verdict::warnings, kEnforce makes it a reason. SCTs
  // count from distinct logs of `ct_log_list_file` (OpenSSL's CT log list
  // format), at least `ct_min_logs` of them.
  CtMode ct_mode = CtMode::kOff;
  std::string ct_log_list_file;
  int ct_min_logs = 2;
};

struct CheckContext {
  // The server's tls_fingerprints (raw 32-byte SHA-256 digests, from a
  // verified key response), for fingerprint_fallback: called only when the
  // fallback could apply (enabled, before its deadline, the chain failed).
  std::function<absl::flat_hash_set<std::string>()> fingerprint_source;
  // The negotiated protocol version (SSL_version), 0 if not a live connection.
  int negotiated_tls_version = 0;
  // SignedCertificateTimestampLists (TLS encoding) the server delivered in
  // the handshake: the TLS extension, a stapled OCSP response. They count
  // towards the CT requirement with the leaf's embedded SCTs.
  std::vector<std::string> delivered_scts;
};

class CertificatePolicy {
 public:
  static absl::StatusOr<std::unique_ptr<CertificatePolicy>> Create(
      CertificatePolicyOptions options);

  CertificatePolicy(const CertificatePolicy&) = delete;
  CertificatePolicy& operator=(const CertificatePolicy&) = delete;

  // `chain`: the leaf first, then the untrusted intermediates in any order.
  // An empty chain is a kMalformed verdict.
  Verdict Check(const std::vector<X509Ptr>& chain, const PeerName& peer, absl::Time at,
                const CheckContext& context = {}) const;

  // The same on encoded input (PEM blocks or one DER certificate); input
  // that does not parse is a kMalformed verdict.
  Verdict CheckEncoded(absl::string_view chain, const PeerName& peer, absl::Time at,
                       const CheckContext& context = {}) const;

  const CertificatePolicyOptions& options() const { return options_; }

 private:
  CertificatePolicy(CertificatePolicyOptions options, Whitelist whitelist,
                    std::shared_ptr<const CtLogs> ct_logs)
      : options_(std::move(options)),
        whitelist_(std::move(whitelist)),
        ct_logs_(std::move(ct_logs)) {}

  CertificatePolicyOptions options_;
  Whitelist whitelist_;
  std::shared_ptr<const CtLogs> ct_logs_;  // null when ct_mode is kOff
};

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_CERTIFICATE_POLICY_H_
