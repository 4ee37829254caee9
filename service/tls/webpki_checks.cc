#include "service/tls/webpki_checks.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace keyverifier::tls {
namespace {

using NameConstraintsPtr =
    std::unique_ptr<NAME_CONSTRAINTS,
                    OpenSslDeleter<NAME_CONSTRAINTS, NAME_CONSTRAINTS_free>>;
using EkuPtr =
    std::unique_ptr<EXTENDED_KEY_USAGE,
                    OpenSslDeleter<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>>;
using AkidPtr = std::unique_ptr<AUTHORITY_KEYID,
                                OpenSslDeleter<AUTHORITY_KEYID, AUTHORITY_KEYID_free>>;
using AiaPtr =
    std::unique_ptr<AUTHORITY_INFO_ACCESS,
                    OpenSslDeleter<AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free>>;
using Asn1OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING,
                    OpenSslDeleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_free>>;

std::string Ia5(const ASN1_IA5STRING* s) {
  return std::string(reinterpret_cast<const char*>(s->data),
                     static_cast<size_t>(s->length));
}

// An extension that is present must decode; returns its index or -1.
int ExtensionIndex(X509* cert, int nid) { return X509_get_ext_by_NID(cert, nid, -1); }

bool ExtensionCritical(X509* cert, int index) {
  return X509_EXTENSION_get_critical(X509_get_ext(cert, index)) == 1;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

void CheckValidity(int depth, X509* cert, absl::Time at, std::vector<Finding>* out) {
  absl::Time not_before = Asn1ToTime(X509_get0_notBefore(cert));
  absl::Time not_after = Asn1ToTime(X509_get0_notAfter(cert));
  if (not_before == absl::InfinitePast() || not_after == absl::InfinitePast()) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert), ": validity cannot be read"));
    return;
  }
  // Certificates carry whole seconds; both ends of the period are included
  // (RFC 5280 4.1.2.5).
  absl::Time t = absl::FromUnixSeconds(absl::ToUnixSeconds(at));
  if (t < not_before) {
    AddFinding(out, Reason::kNotYetValid,
               absl::StrCat(DescribePosition(depth, cert), ": not valid before ",
                            Rfc3339(not_before), " (checked at ", Rfc3339(t), ")"));
  }
  if (t > not_after) {
    AddFinding(out, Reason::kExpired,
               absl::StrCat(DescribePosition(depth, cert), ": expired at ",
                            Rfc3339(not_after), " (checked at ", Rfc3339(t), ")"));
  }
}

void CheckKey(int depth, X509* cert, const WebPkiOptions& limits,
              std::vector<Finding>* out) {
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) {
    AddFinding(
        out, Reason::kMalformed,
        absl::StrCat(DescribePosition(depth, cert), ": public key cannot be decoded"));
    return;
  }
  int type = EVP_PKEY_get_base_id(key);
  int bits = EVP_PKEY_get_bits(key);
  if (type == EVP_PKEY_RSA || type == EVP_PKEY_RSA_PSS) {
    if (bits < limits.min_rsa_bits) {
      AddFinding(out, Reason::kWeakKey,
                 absl::StrCat(DescribePosition(depth, cert), ": RSA key of ", bits,
                              " bits; at least ", limits.min_rsa_bits, " required"));
    } else if (bits % 8 != 0) {
      AddFinding(out, Reason::kWeakKey,
                 absl::StrCat(DescribePosition(depth, cert), ": RSA key of ", bits,
                              " bits; the size must be a multiple of 8"));
    }
  } else if (type == EVP_PKEY_EC) {
    char curve[80] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, curve, sizeof(curve), &len) != 1) len = 0;
    absl::string_view c(curve, len);
    if (c != "prime256v1" && c != "secp384r1" && c != "secp521r1" && c != "P-256" &&
        c != "P-384" && c != "P-521") {
      AddFinding(
          out, Reason::kWeakKey,
          absl::StrCat(DescribePosition(depth, cert), ": EC key on curve \"",
                       c.empty() ? "unnamed" : c, "\"; P-256, P-384 or P-521 required"));
    }
  } else if (type != EVP_PKEY_ED25519 && type != EVP_PKEY_ED448) {
    AddFinding(out, Reason::kWeakKey,
               absl::StrCat(DescribePosition(depth, cert), ": ", OBJ_nid2ln(type),
                            " keys are not accepted"));
  }
}

void CheckSignatureAlgorithm(int depth, X509* cert, std::vector<Finding>* out) {
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  int sig_nid = X509_get_signature_nid(cert);
  if (!OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid)) return;
  if (md_nid == NID_sha1 || md_nid == NID_md5 || md_nid == NID_md4 || md_nid == NID_md2 ||
      md_nid == NID_md5_sha1) {
    AddFinding(out, Reason::kWeakSignatureAlgorithm,
               absl::StrCat(DescribePosition(depth, cert), ": signed with ",
                            OBJ_nid2ln(sig_nid)));
  }
}

void CheckSerial(int depth, X509* cert, std::vector<Finding>* out) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return;
  if (BN_is_zero(bn.get()) || BN_is_negative(bn.get())) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert),
                            ": serial number must be positive (RFC 5280 4.1.2.2)"));
    return;
  }
  // DER content octets: a leading zero byte when the top bit is set.
  int octets = BN_num_bytes(bn.get()) + (BN_num_bits(bn.get()) % 8 == 0 ? 1 : 0);
  if (octets > 20) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert), ": serial number of ", octets,
                            " octets; at most 20 (RFC 5280 4.1.2.2)"));
  }
}

void CheckAia(int depth, X509* cert, std::vector<Finding>* out) {
  if (ExtensionIndex(cert, NID_info_access) < 0) return;
  AiaPtr aia(static_cast<AUTHORITY_INFO_ACCESS*>(
      X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr)));
  if (!aia || sk_ACCESS_DESCRIPTION_num(aia.get()) == 0) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert),
                            ": authorityInfoAccess is malformed or empty"));
  }
}

// RFC 5280 4.2.1.1: every certificate but a self-signed one names its
// issuer's key; a root that carries the extension names only its own key.
void CheckAuthorityKeyId(int depth, X509* cert, bool self_signed,
                         std::vector<Finding>* out) {
  bool present = ExtensionIndex(cert, NID_authority_key_identifier) >= 0;
  AkidPtr akid(static_cast<AUTHORITY_KEYID*>(
      X509_get_ext_d2i(cert, NID_authority_key_identifier, nullptr, nullptr)));
  if (present && !akid) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert),
                            ": authorityKeyIdentifier cannot be decoded"));
    return;
  }
  if (!self_signed) {
    if (!akid || akid->keyid == nullptr) {
      AddFinding(
          out, Reason::kMalformed,
          absl::StrCat(DescribePosition(depth, cert),
                       ": no authorityKeyIdentifier keyIdentifier (RFC 5280 4.2.1.1)"));
    }
    return;
  }
  if (!akid) return;
  if (akid->keyid == nullptr) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert),
                            ": root's authorityKeyIdentifier has no keyIdentifier"));
  }
  if (akid->issuer != nullptr || akid->serial != nullptr) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert),
                            ": root's authorityKeyIdentifier names an issuer or serial"));
  }
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert);
  if (akid->keyid != nullptr &&
      (ski == nullptr || ASN1_OCTET_STRING_cmp(ski, akid->keyid) != 0)) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(DescribePosition(depth, cert),
                            ": root's authorityKeyIdentifier differs from its "
                            "subjectKeyIdentifier"));
  }
}

void CheckLeafEku(X509* leaf, std::vector<Finding>* out) {
  int idx = ExtensionIndex(leaf, NID_ext_key_usage);
  if (idx < 0) {
    AddFinding(out, Reason::kBadEku,
               "leaf has no extendedKeyUsage; serverAuth is required");
    return;
  }
  if (ExtensionCritical(leaf, idx)) {
    AddFinding(out, Reason::kBadEku, "leaf's extendedKeyUsage must not be critical");
  }
  EkuPtr eku(static_cast<EXTENDED_KEY_USAGE*>(
      X509_get_ext_d2i(leaf, NID_ext_key_usage, nullptr, nullptr)));
  if (!eku || sk_ASN1_OBJECT_num(eku.get()) == 0) {
    AddFinding(out, Reason::kBadEku, "leaf's extendedKeyUsage is empty or malformed");
    return;
  }
  bool server_auth = false;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
    int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i));
    if (nid == NID_server_auth) server_auth = true;
    if (nid == NID_anyExtendedKeyUsage) {
      AddFinding(out, Reason::kBadEku,
                 "leaf's extendedKeyUsage contains anyExtendedKeyUsage");
    }
  }
  if (!server_auth) {
    AddFinding(out, Reason::kBadEku,
               "leaf's extendedKeyUsage does not include serverAuth");
  }
}

// Canonical text of an iPAddress SAN, as a CN must copy it.
std::string IpText(const ASN1_OCTET_STRING* s) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (s->length == 4) {
    inet_ntop(AF_INET, s->data, buf, sizeof(buf));
  } else if (s->length == 16) {
    inet_ntop(AF_INET6, s->data, buf, sizeof(buf));
  } else {
    return "";
  }
  return buf;
}

// The commonName is never used as a name (and so not checked against the
// SANs, as CABF BR 7.1.4.3 would): matching uses SANs only.
void CheckLeafNames(X509* leaf, const PublicSuffixList* public_suffixes,
                    std::vector<Finding>* out) {
  int san_idx = ExtensionIndex(leaf, NID_subject_alt_name);
  X509_NAME* subject = X509_get_subject_name(leaf);
  if (san_idx >= 0 && ExtensionCritical(leaf, san_idx) &&
      X509_NAME_entry_count(subject) > 0) {
    AddFinding(out, Reason::kMalformed,
               "leaf's subjectAltName is critical although the subject is not empty");
  }
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
      if (gn->type == GEN_DNS) {
        std::string name = Ia5(gn->d.dNSName);
        if (!IsValidDnsSan(name, /*allow_wildcard=*/true)) {
          AddFinding(out, Reason::kMalformed,
                     absl::StrCat("leaf's subjectAltName dNSName \"", absl::CEscape(name),
                                  "\" is not a host name (RFC 5280 4.2.1.6)"));
        } else if (public_suffixes != nullptr && absl::StartsWith(name, "*.") &&
                   public_suffixes->IsPublicSuffix(
                       absl::AsciiStrToLower(name.substr(2)))) {
          AddFinding(out, Reason::kMalformed,
                     absl::StrCat("leaf's subjectAltName \"", name,
                                  "\" is a wildcard over the public suffix \"",
                                  name.substr(2), "\""));
        }
      } else if (gn->type == GEN_IPADD) {
        if (IpText(gn->d.iPAddress).empty()) {
          AddFinding(out, Reason::kMalformed,
                     absl::StrCat("leaf's subjectAltName iPAddress has ",
                                  gn->d.iPAddress->length, " bytes; 4 or 16 expected"));
        }
      }
    }
  }
}

bool DnsWithin(absl::string_view name, absl::string_view base) {
  if (base.empty()) return true;
  if (name.size() == base.size()) return absl::EqualsIgnoreCase(name, base);
  return name.size() > base.size() && name[name.size() - base.size() - 1] == '.' &&
         absl::EqualsIgnoreCase(name.substr(name.size() - base.size()), base);
}

bool IpWithin(const std::string& ip, const ASN1_OCTET_STRING* range) {
  size_t n = ip.size();
  if (static_cast<size_t>(range->length) != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    unsigned char mask = range->data[n + i];
    if ((static_cast<unsigned char>(ip[i]) & mask) != (range->data[i] & mask)) {
      return false;
    }
  }
  return true;
}

// The constraints of a CA certificate: well-formed, critical, and the peer
// name inside them. OpenSSL checks the certificate's own names; a wildcard
// SAN can still cover a peer name that a constraint excludes.
void CheckNameConstraints(int depth, X509* cert, const PeerName& peer,
                          std::vector<Finding>* out) {
  int idx = ExtensionIndex(cert, NID_name_constraints);
  if (idx < 0) return;
  std::string who = DescribePosition(depth, cert);
  if (depth == 0) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(who, ": nameConstraints in a leaf certificate"));
    return;
  }
  if (!ExtensionCritical(cert, idx)) {
    AddFinding(
        out, Reason::kMalformed,
        absl::StrCat(who, ": nameConstraints must be critical (RFC 5280 4.2.1.10)"));
  }
  NameConstraintsPtr nc(static_cast<NAME_CONSTRAINTS*>(
      X509_get_ext_d2i(cert, NID_name_constraints, nullptr, nullptr)));
  if (!nc) {
    AddFinding(out, Reason::kMalformed,
               absl::StrCat(who, ": nameConstraints cannot be decoded"));
    return;
  }
  if (sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) <= 0 &&
      sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) <= 0) {
    AddFinding(
        out, Reason::kMalformed,
        absl::StrCat(who,
                     ": nameConstraints with neither permitted nor excluded subtrees"));
    return;
  }
  bool any_permitted_of_kind = false;
  bool inside_permitted = false;
  for (int pass = 0; pass < 2; ++pass) {
    STACK_OF(GENERAL_SUBTREE)* trees =
        pass == 0 ? nc->permittedSubtrees : nc->excludedSubtrees;
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(trees); ++i) {
      const GENERAL_NAME* base = sk_GENERAL_SUBTREE_value(trees, i)->base;
      bool within = false;
      if (base->type == GEN_DNS) {
        std::string b = Ia5(base->d.dNSName);
        if (!b.empty() && !IsValidDnsSan(b, /*allow_wildcard=*/false)) {
          AddFinding(out, Reason::kMalformed,
                     absl::StrCat(who, ": nameConstraints dNSName \"", absl::CEscape(b),
                                  "\" is not a domain name"));
          continue;
        }
        if (peer.is_ip()) continue;
        within = DnsWithin(peer.text, b);
      } else if (base->type == GEN_IPADD) {
        if (!peer.is_ip()) continue;
        within = IpWithin(peer.ip_bytes, base->d.iPAddress);
      } else {
        continue;
      }
      if (pass == 0) {
        any_permitted_of_kind = true;
        inside_permitted = inside_permitted || within;
      } else if (within) {
        AddFinding(out, Reason::kNameConstraintViolation,
                   absl::StrCat(who, ": excludes \"", peer.text, "\""));
      }
    }
  }
  if (any_permitted_of_kind && !inside_permitted) {
    AddFinding(out, Reason::kNameConstraintViolation,
               absl::StrCat(who, ": does not permit \"", peer.text, "\""));
  }
}

void CheckRootExtensions(int depth, X509* cert, std::vector<Finding>* out) {
  if (ExtensionIndex(cert, NID_ext_key_usage) >= 0) {
    AddFinding(out, Reason::kInvalidCa,
               absl::StrCat(DescribePosition(depth, cert),
                            ": a root must not carry extendedKeyUsage (CABF 7.1.2.1.2)"));
  }
}

}  // namespace

bool IsValidDnsSan(absl::string_view name, bool allow_wildcard) {
  if (allow_wildcard && absl::StartsWith(name, "*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

void CheckWebPkiRules(STACK_OF(X509) * chain, bool anchored, const PeerName& peer,
                      absl::Time at, const WebPkiOptions& options,
                      std::vector<Finding>* out) {
  int n = sk_X509_num(chain);
  for (int i = 0; i < n; ++i) {
    X509* cert = sk_X509_value(chain, i);
    bool is_anchor = anchored && i == n - 1;
    bool self_issued =
        X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
    // Signed by its own key (a root), judged by the signature alone: OpenSSL's
    // X509_self_signed also compares key identifiers, which is what the root
    // checks below look at. A self-issued CA with a new key is no root.
    bool self_signed = self_issued && X509_verify(cert, X509_get0_pubkey(cert)) == 1;
    CheckValidity(i, cert, at, out);
    CheckKey(i, cert, options, out);
    // The anchor's self-signature proves nothing; many roots use SHA-1.
    if (!is_anchor) CheckSignatureAlgorithm(i, cert, out);
    if (!is_anchor || i == 0) CheckSerial(i, cert, out);
    CheckAia(i, cert, out);
    CheckAuthorityKeyId(i, cert, self_signed, out);
    CheckNameConstraints(i, cert, peer, out);
    if (i > 0 && self_signed) CheckRootExtensions(i, cert, out);
  }
  ERR_clear_error();
  if (n == 0) return;
  X509* leaf = sk_X509_value(chain, 0);
  if ((X509_get_extension_flags(leaf) & EXFLAG_CA) != 0) {
    AddFinding(out, Reason::kCaAsLeaf,
               "leaf is a CA certificate (basicConstraints CA:TRUE); a server "
               "certificate must not be one");
  }
  CheckLeafEku(leaf, out);
  CheckLeafNames(leaf, options.public_suffixes, out);
  ERR_clear_error();
}

}  // namespace keyverifier::tls
