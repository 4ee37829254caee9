#include "service/tls/verdict.h"

#include <arpa/inet.h>
#include <openssl/err.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace keyverifier::tls {

absl::string_view ReasonName(Reason r) {
  switch (r) {
    case Reason::kExpired:
      return "expired";
    case Reason::kNotYetValid:
      return "not_yet_valid";
    case Reason::kHostnameMismatch:
      return "hostname_mismatch";
    case Reason::kUntrustedRoot:
      return "untrusted_root";
    case Reason::kMissingIntermediate:
      return "missing_intermediate";
    case Reason::kBadEku:
      return "bad_eku";
    case Reason::kWeakKey:
      return "weak_key";
    case Reason::kWeakSignatureAlgorithm:
      return "weak_signature_algorithm";
    case Reason::kCtPolicyUnmet:
      return "ct_policy_unmet";
    case Reason::kTlsVersionTooLow:
      return "tls_version_too_low";
    case Reason::kMalformed:
      return "malformed";
    case Reason::kBadSignature:
      return "bad_signature";
    case Reason::kInvalidCa:
      return "invalid_ca";
    case Reason::kCaAsLeaf:
      return "ca_as_leaf";
    case Reason::kNameConstraintViolation:
      return "name_constraint_violation";
    case Reason::kInvalidChain:
      return "invalid_chain";
  }
  return "unknown";
}

absl::string_view AppliedRuleName(AppliedRule r) {
  switch (r) {
    case AppliedRule::kNone:
      return "none";
    case AppliedRule::kChainVerified:
      return "chain_verified";
    case AppliedRule::kWhitelistGlob:
      return "whitelist_glob";
    case AppliedRule::kWhitelistCidr:
      return "whitelist_cidr";
    case AppliedRule::kFingerprintFallback:
      return "fingerprint_fallback";
  }
  return "unknown";
}

bool Verdict::Has(Reason r) const {
  return std::any_of(reasons.begin(), reasons.end(),
                     [r](const Finding& f) { return f.reason == r; });
}

CertificateInfo DescribeCertificate(X509* cert) {
  CertificateInfo info;
  info.subject = NameToString(X509_get_subject_name(cert));
  info.issuer = NameToString(X509_get_issuer_name(cert));
  info.not_before = Asn1ToTime(X509_get0_notBefore(cert));
  info.not_after = Asn1ToTime(X509_get0_notAfter(cert));
  info.sha256 = Sha256FingerprintHex(cert);
  info.is_ca = X509_check_ca(cert) != 0;
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
      if (gn->type == GEN_DNS) {
        const ASN1_IA5STRING* s = gn->d.dNSName;
        info.dns_names.emplace_back(reinterpret_cast<const char*>(s->data),
                                    static_cast<size_t>(s->length));
      } else if (gn->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* s = gn->d.iPAddress;
        char buf[INET6_ADDRSTRLEN] = {0};
        if (s->length == 4) {
          inet_ntop(AF_INET, s->data, buf, sizeof(buf));
        } else if (s->length == 16) {
          inet_ntop(AF_INET6, s->data, buf, sizeof(buf));
        } else {
          absl::SNPrintF(buf, sizeof(buf), "<%d bytes>", s->length);
        }
        info.ip_addresses.emplace_back(buf);
      }
    }
  }
  ERR_clear_error();
  return info;
}

void AddFinding(std::vector<Finding>* out, Reason reason, std::string message) {
  for (const Finding& f : *out) {
    if (f.reason == reason && f.message == message) return;
  }
  out->push_back({reason, std::move(message)});
}

std::string DescribePosition(int depth, X509* cert) {
  return absl::StrCat(depth == 0 ? "leaf" : absl::StrCat("certificate ", depth), " (",
                      NameToString(X509_get_subject_name(cert)), ")");
}

}  // namespace keyverifier::tls
