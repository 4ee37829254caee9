// The outcome of a certificate check: valid or not, the machine-readable
// reasons with messages, what the certificates said, and which rule decided.
//
// Plain value types, thread-compatible. No errors: a failing certificate is
// a Verdict, not a Status.
#ifndef KEYVERIFIER_SERVICE_TLS_VERDICT_H_
#define KEYVERIFIER_SERVICE_TLS_VERDICT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/tls/openssl_util.h"

namespace keyverifier::tls {

enum class Reason {
  kExpired,
  kNotYetValid,
  kHostnameMismatch,
  kUntrustedRoot,
  kMissingIntermediate,
  kBadEku,
  kWeakKey,
  kWeakSignatureAlgorithm,
  kCtPolicyUnmet,
  kTlsVersionTooLow,
  kMalformed,
  kBadSignature,
  kInvalidCa,  // issuer not allowed to issue (basicConstraints, keyUsage, pathLen)
  kCaAsLeaf,   // the leaf is a CA certificate
  kNameConstraintViolation,  // a name outside an issuer's name constraints
  kInvalidChain,             // any other verification failure (message says which)
};

// "expired", "hostname_mismatch", ...
absl::string_view ReasonName(Reason r);

struct Finding {
  Reason reason;
  std::string message;  // names the certificate (depth, subject) and values
};

struct CertificateInfo {
  std::string subject;  // RFC 2253
  std::string issuer;
  std::vector<std::string> dns_names;     // SAN dNSName entries
  std::vector<std::string> ip_addresses;  // SAN iPAddress entries, text form
  absl::Time not_before = absl::InfinitePast();
  absl::Time not_after = absl::InfinitePast();
  std::string sha256;  // hex, of the DER
  bool is_ca = false;
};

// Why a verdict came out as it did.
enum class AppliedRule {
  kNone,                 // invalid
  kChainVerified,        // a trusted chain and every check passed
  kWhitelistGlob,        // peer name matched a domain glob; nothing checked
  kWhitelistCidr,        // peer address in a CIDR range; nothing checked
  kFingerprintFallback,  // checks failed; MSC1711 fingerprint accepted
};

// "none", "chain_verified", "whitelist_glob", "whitelist_cidr",
// "fingerprint_fallback".
absl::string_view AppliedRuleName(AppliedRule r);

struct Verdict {
  bool valid = false;
  // Why the chain failed the checks. Under kFingerprintFallback these are
  // kept, so the caller sees what the fallback covered for.
  std::vector<Finding> reasons;
  // Findings that do not affect `valid` (Certificate Transparency in
  // report mode).
  std::vector<Finding> warnings;
  // The certificates presented, leaf first, as sent.
  std::vector<CertificateInfo> presented;
  // The verified chain, leaf to trust anchor (empty unless one was built).
  std::vector<CertificateInfo> verified_chain;
  AppliedRule rule = AppliedRule::kNone;
  std::string rule_detail;  // the whitelist rule or the matched fingerprint

  bool Has(Reason r) const;
};

// What Verdict carries about one certificate.
CertificateInfo DescribeCertificate(X509* cert);

// Appends a finding unless the same one is already there.
void AddFinding(std::vector<Finding>* out, Reason reason, std::string message);

// "leaf (CN=...)" or "certificate 2 (CN=...)": how messages name a
// certificate by its position in the chain.
std::string DescribePosition(int depth, X509* cert);

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_VERDICT_H_
