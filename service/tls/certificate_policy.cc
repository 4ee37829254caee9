#include "service/tls/certificate_policy.h"

#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/tls/webpki_checks.h"

namespace keyverifier::tls {
namespace {

// Errors OpenSSL reported during one X509_verify_cert, in order.
struct VerifyErrors {
  struct Entry {
    int error;
    int depth;
    std::string subject;
  };
  std::vector<Entry> entries;
};

int CollectErrors(int ok, X509_STORE_CTX* ctx) {
  if (ok) return 1;
  int error = X509_STORE_CTX_get_error(ctx);
  // Validity is judged by CheckWebPkiRules (notAfter inclusive); OpenSSL
  // still gets the time so that path building prefers current issuers.
  if (error == X509_V_ERR_CERT_HAS_EXPIRED || error == X509_V_ERR_CERT_NOT_YET_VALID) {
    return 1;
  }
  auto* errors = static_cast<VerifyErrors*>(X509_STORE_CTX_get_app_data(ctx));
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  errors->entries.push_back(
      {error, X509_STORE_CTX_get_error_depth(ctx),
       cert ? NameToString(X509_get_subject_name(cert)) : std::string()});
  // Keep going so that every problem is reported, not only the first.
  return 1;
}

Reason ReasonForError(int error) {
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return Reason::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Reason::kNotYetValid;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return Reason::kHostnameMismatch;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return Reason::kUntrustedRoot;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return Reason::kMissingIntermediate;
    case X509_V_ERR_INVALID_PURPOSE:
      return Reason::kBadEku;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
      return Reason::kWeakKey;
    case X509_V_ERR_CA_MD_TOO_WEAK:
      return Reason::kWeakSignatureAlgorithm;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
      return Reason::kBadSignature;
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED:
      return Reason::kInvalidCa;
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_SUBTREE_MINMAX:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
    case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
      return Reason::kNameConstraintViolation;
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_INVALID_EXTENSION:
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
      return Reason::kMalformed;
    default:
      return Reason::kInvalidChain;
  }
}

struct PathResult {
  std::vector<Finding> findings;
  std::vector<CertificateInfo> chain;  // leaf to anchor, when it passed
  X509Ptr issuer;                      // the leaf's issuer, when it passed
};

// One X509_verify_cert over `store` and `untrusted`, then the checks OpenSSL
// does not make, on the chain it built.
PathResult EvaluatePath(X509* leaf, const std::vector<X509*>& untrusted_certs,
                        X509_STORE* store, const PeerName& peer, absl::Time at,
                        const WebPkiOptions& webpki) {
  PathResult result;
  ERR_clear_error();
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509StackView untrusted(sk_X509_new_null());
  for (X509* c : untrusted_certs) sk_X509_push(untrusted.get(), c);
  VerifyErrors errors;
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store, leaf, untrusted.get()) != 1) {
    AddFinding(&result.findings, Reason::kInvalidChain,
               absl::StrCat("cannot start verification: ", DrainOpenSslErrors()));
    return result;
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(at));
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
  // Names come from SANs only, also under name constraints.
  X509_VERIFY_PARAM_set_hostflags(
      param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_STORE_CTX_set_app_data(ctx.get(), &errors);
  X509_STORE_CTX_set_verify_cb(ctx.get(), CollectErrors);
  X509_verify_cert(ctx.get());
  for (const VerifyErrors::Entry& e : errors.entries) {
    AddFinding(&result.findings, ReasonForError(e.error),
               absl::StrCat(e.depth == 0 ? "leaf" : absl::StrCat("certificate ", e.depth),
                            e.subject.empty() ? "" : absl::StrCat(" (", e.subject, ")"),
                            ": ", X509_verify_cert_error_string(e.error)));
  }
  STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
  if (built != nullptr && sk_X509_num(built) > 0) {
    bool anchored = X509_STORE_CTX_get_num_untrusted(ctx.get()) < sk_X509_num(built);
    CheckWebPkiRules(built, anchored, peer, at, webpki, &result.findings);
    if (result.findings.empty()) {
      for (int i = 0; i < sk_X509_num(built); ++i) {
        result.chain.push_back(DescribeCertificate(sk_X509_value(built, i)));
      }
      if (sk_X509_num(built) > 1) result.issuer = Ref(sk_X509_value(built, 1));
    }
  }
  ERR_clear_error();
  return result;
}

constexpr size_t kMaxPathLength = 10;  // certificates, leaf and anchor included
constexpr size_t kMaxCandidatePaths = 64;
// Bounds the search itself when intermediates are many and lead nowhere.
constexpr int kMaxSearchSteps = 2000;

bool ValidAt(X509* cert, absl::Time at) {
  time_t t = absl::ToTimeT(at);
  return X509_cmp_time(X509_get0_notBefore(cert), &t) <= 0 &&
         X509_cmp_time(X509_get0_notAfter(cert), &t) >= 0;
}

// Could `issuer` be the next certificate above `subject` on a passing path?
// Certificates that fail on their own (not a CA, outside their validity)
// are skipped; the path's own verification judges everything else.
bool UsableIssuer(X509* issuer, X509* subject, absl::Time at) {
  return X509_check_issued(issuer, subject) == X509_V_OK && X509_check_ca(issuer) != 0 &&
         ValidAt(issuer, at);
}

bool OnPath(const std::vector<X509*>& path, X509* cert) {
  for (X509* c : path) {
    if (X509_cmp(c, cert) == 0) return true;
  }
  return false;
}

void ExtendPaths(std::vector<X509*>* path, const std::vector<X509*>& intermediates,
                 const std::vector<X509Ptr>& roots, absl::Time at, int* steps,
                 std::vector<std::vector<X509*>>* out) {
  if (out->size() >= kMaxCandidatePaths || path->size() >= kMaxPathLength ||
      ++*steps > kMaxSearchSteps) {
    return;
  }
  X509* tail = path->back();
  for (const X509Ptr& root : roots) {
    if (out->size() >= kMaxCandidatePaths) return;
    if (!OnPath(*path, root.get()) && UsableIssuer(root.get(), tail, at)) {
      out->push_back(*path);
      out->back().push_back(root.get());
    }
  }
  for (X509* next : intermediates) {
    if (OnPath(*path, next) || !UsableIssuer(next, tail, at)) continue;
    path->push_back(next);
    ExtendPaths(path, intermediates, roots, at, steps, out);
    path->pop_back();
  }
}

// Paths from `leaf` through presented intermediates to a trusted
// certificate, shortest first, at most kMaxCandidatePaths.
std::vector<std::vector<X509*>> CandidatePaths(X509* leaf,
                                               const std::vector<X509*>& intermediates,
                                               const std::vector<X509Ptr>& roots,
                                               absl::Time at) {
  std::vector<std::vector<X509*>> out;
  std::vector<X509*> path = {leaf};
  int steps = 0;
  ExtendPaths(&path, intermediates, roots, at, &steps, &out);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.size() < b.size(); });
  ERR_clear_error();
  return out;
}

std::vector<std::string> PresentedNames(const CertificateInfo& leaf) {
  std::vector<std::string> names = leaf.dns_names;
  for (const std::string& ip : leaf.ip_addresses) names.push_back(ip);
  return names;
}

void CheckName(X509* leaf, const CertificateInfo& info, const PeerName& peer,
               std::vector<Finding>* out) {
  bool matched;
  if (peer.is_ip()) {
    matched =
        X509_check_ip(leaf, reinterpret_cast<const unsigned char*>(peer.ip_bytes.data()),
                      peer.ip_bytes.size(), 0) == 1;
  } else {
    matched = X509_check_host(leaf, peer.text.data(), peer.text.size(),
                              X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                              nullptr) == 1;
  }
  if (matched) return;
  std::vector<std::string> names = PresentedNames(info);
  AddFinding(
      out, Reason::kHostnameMismatch,
      absl::StrCat("certificate is not valid for ", peer.is_ip() ? "IP address " : "",
                   "\"", peer.text, "\"; it names ",
                   names.empty() ? std::string("no subject alternative names")
                                 : absl::StrCat("[", absl::StrJoin(names, ", "), "]"),
                   peer.is_ip() ? " (an IP literal matches IP SANs only)" : ""));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificatePolicy>> CertificatePolicy::Create(
    CertificatePolicyOptions options) {
  if (options.min_tls_version != TLS1_2_VERSION &&
      options.min_tls_version != TLS1_3_VERSION) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_tls_version 0x", absl::Hex(options.min_tls_version),
                     ": only TLS 1.2 (0x303) and TLS 1.3 (0x304) are allowed"));
  }
  if (options.min_rsa_bits < 2048) {
    return absl::InvalidArgumentError(absl::StrCat("min_rsa_bits ", options.min_rsa_bits,
                                                   ": below 2048 is not allowed"));
  }
  std::shared_ptr<const CtLogs> ct_logs;
  if (options.ct_mode != CtMode::kOff) {
    if (options.ct_log_list_file.empty()) {
      return absl::InvalidArgumentError(
          "ct_mode report or enforce needs ct_log_list_file");
    }
    if (options.ct_min_logs < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("ct_min_logs ", options.ct_min_logs, ": at least 1"));
    }
    absl::StatusOr<std::shared_ptr<const CtLogs>> logs =
        CtLogs::FromFile(options.ct_log_list_file);
    if (!logs.ok()) return logs.status();
    ct_logs = *std::move(logs);
  }
  if (options.fingerprint_fallback &&
      options.fingerprint_fallback_until == absl::InfinitePast()) {
    return absl::InvalidArgumentError(
        "fingerprint_fallback needs a deadline (fingerprint_fallback_until)");
  }
  absl::StatusOr<Whitelist> whitelist = Whitelist::Create(options.whitelist);
  if (!whitelist.ok()) return whitelist.status();
  if (!options.public_suffixes && !options.public_suffix_file.empty()) {
    absl::StatusOr<std::shared_ptr<const PublicSuffixList>> psl =
        PublicSuffixList::FromFile(options.public_suffix_file);
    if (!psl.ok()) return psl.status();
    options.public_suffixes = *std::move(psl);
  }
  if (!options.trust_store) {
    absl::StatusOr<std::shared_ptr<const TrustStore>> store =
        TrustStore::Create(options.trust);
    if (!store.ok()) return store.status();
    options.trust_store = *std::move(store);
  }
  return std::unique_ptr<CertificatePolicy>(new CertificatePolicy(
      std::move(options), *std::move(whitelist), std::move(ct_logs)));
}

Verdict CertificatePolicy::CheckEncoded(absl::string_view chain, const PeerName& peer,
                                        absl::Time at,
                                        const CheckContext& context) const {
  absl::StatusOr<std::vector<X509Ptr>> certs = ParseCertificates(chain, "chain");
  if (!certs.ok()) {
    Verdict v;
    v.reasons.push_back({Reason::kMalformed, std::string(certs.status().message())});
    return v;
  }
  return Check(*certs, peer, at, context);
}

Verdict CertificatePolicy::Check(const std::vector<X509Ptr>& chain, const PeerName& peer,
                                 absl::Time at, const CheckContext& context) const {
  Verdict v;
  if (chain.empty()) {
    v.reasons.push_back({Reason::kMalformed, "no certificate presented"});
    return v;
  }
  for (const X509Ptr& c : chain) v.presented.push_back(DescribeCertificate(c.get()));

  if (std::optional<Whitelist::Match> m = whitelist_.Find(peer)) {
    v.valid = true;
    v.rule = m->kind == Whitelist::RuleKind::kCidr ? AppliedRule::kWhitelistCidr
                                                   : AppliedRule::kWhitelistGlob;
    v.rule_detail = m->rule;
    return v;
  }

  X509* leaf = chain[0].get();
  std::vector<X509*> intermediates;
  for (size_t i = 1; i < chain.size(); ++i) intermediates.push_back(chain[i].get());
  WebPkiOptions webpki;
  webpki.min_rsa_bits = options_.min_rsa_bits;
  webpki.public_suffixes = options_.public_suffixes.get();

  // OpenSSL's own path first; its findings are what the verdict reports if
  // no path passes.
  PathResult first =
      EvaluatePath(leaf, intermediates, options_.trust_store->store(), peer, at, webpki);
  PathResult* chosen = &first;
  PathResult alternative;
  if (!first.findings.empty()) {
    // OpenSSL builds one path; another one through the same certificates
    // may pass (cross-signed intermediates, an expired or constrained
    // branch). Try each candidate with only its own certificates.
    for (const std::vector<X509*>& path :
         CandidatePaths(leaf, intermediates, options_.trust_store->roots(), at)) {
      X509StorePtr store(X509_STORE_new());
      if (!store) break;
      X509_STORE_add_cert(store.get(), path.back());
      std::vector<X509*> middle(path.begin() + 1, path.end() - 1);
      PathResult r = EvaluatePath(leaf, middle, store.get(), peer, at, webpki);
      if (r.findings.empty()) {
        alternative = std::move(r);
        chosen = &alternative;
        break;
      }
    }
    ERR_clear_error();
  }
  v.reasons = std::move(chosen->findings);
  v.verified_chain = std::move(chosen->chain);
  if (ct_logs_ && v.reasons.empty() && chosen->issuer) {
    CtEvaluation ct = EvaluateEmbeddedScts(leaf, chosen->issuer.get(), *ct_logs_, at);
    const int embedded = ct.embedded_scts;
    ct.Merge(EvaluateDeliveredScts(context.delivered_scts, leaf, *ct_logs_, at));
    if (static_cast<int>(ct.valid_logs.size()) < options_.ct_min_logs) {
      AddFinding(
          options_.ct_mode == CtMode::kEnforce ? &v.reasons : &v.warnings,
          Reason::kCtPolicyUnmet,
          absl::StrCat("leaf has ", embedded, " embedded SCTs and the handshake ",
                       ct.embedded_scts - embedded, " more; ", ct.valid_logs.size(),
                       " verified from distinct known logs (", ct.unverified_scts,
                       " did not verify); at least ", options_.ct_min_logs, " required"));
    }
  }
  CheckName(leaf, v.presented[0], peer, &v.reasons);
  if (context.negotiated_tls_version != 0 &&
      context.negotiated_tls_version < options_.min_tls_version) {
    AddFinding(
        &v.reasons, Reason::kTlsVersionTooLow,
        absl::StrCat("negotiated protocol 0x", absl::Hex(context.negotiated_tls_version),
                     " is below the minimum 0x", absl::Hex(options_.min_tls_version)));
  }
  ERR_clear_error();

  if (v.reasons.empty()) {
    v.valid = true;
    v.rule = AppliedRule::kChainVerified;
    return v;
  }
  v.verified_chain.clear();
  // A connection below the minimum version is never rescued by a fingerprint.
  const bool fallback_applies = options_.fingerprint_fallback &&
                                at < options_.fingerprint_fallback_until &&
                                !v.Has(Reason::kTlsVersionTooLow);
  if (fallback_applies && context.fingerprint_source) {
    const std::string& digest = v.presented[0].sha256;  // hex, of the leaf's DER
    if (context.fingerprint_source().contains(absl::HexStringToBytes(digest))) {
      v.valid = true;
      v.rule = AppliedRule::kFingerprintFallback;
      v.rule_detail = digest;
    }
  }
  return v;
}

}  // namespace keyverifier::tls
