// Certificate chains and the federation certificate policy
// (service/tls/openssl_util.h ParseCertificates, certificate_policy.h). The
// input is what a peer presents: PEM blocks or one DER certificate. The
// last certificate of the input is taken as the only trusted root, so seed
// chains verify and mutations reach every check after OpenSSL's.
//
// Invariants:
// - Each parsed certificate's DER parses back to the same DER.
// - CheckEncoded on the input gives the same verdict as Check on the parsed
//   certificates; input that does not parse is a malformed, invalid verdict.
// - A verdict lists the presented certificates, leaf first; it is valid only
//   with no reasons, by a verified chain that ends in the trusted root.
// - Checking twice gives the same verdict.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/tls/certificate_policy.h"
#include "service/tls/openssl_util.h"
#include "service/tls/peer_name.h"
#include "service/tls/public_suffix.h"
#include "service/tls/trust_store.h"
#include "service/tls/verdict.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::tls {
namespace {

std::string Describe(const Verdict& v) {
  std::string out = absl::StrCat(v.valid ? "valid" : "invalid", " rule ",
                                 static_cast<int>(v.rule), " ", v.rule_detail);
  for (const Finding& f : v.reasons) {
    absl::StrAppend(&out, "\n  ", ReasonName(f.reason), ": ", f.message);
  }
  for (const CertificateInfo& c : v.presented) absl::StrAppend(&out, "\n  presented ", c.sha256);
  for (const CertificateInfo& c : v.verified_chain) {
    absl::StrAppend(&out, "\n  verified ", c.sha256);
  }
  return out;
}

std::shared_ptr<const PublicSuffixList> Suffixes() {
  static const auto* list = new std::shared_ptr<const PublicSuffixList>(
      *PublicSuffixList::FromText("com\norg\nco.uk\n*.ck\n!www.ck\n"));
  return *list;
}

// The peer a chain is checked for: the leaf's first DNS name, else a name
// it does not have.
PeerName PeerFor(X509* leaf) {
  const CertificateInfo info = DescribeCertificate(leaf);
  for (const std::string& name : info.dns_names) {
    absl::StatusOr<PeerName> peer = PeerName::Parse(name);
    if (peer.ok()) return *std::move(peer);
  }
  for (const std::string& ip : info.ip_addresses) {
    absl::StatusOr<PeerName> peer = PeerName::Parse(ip);
    if (peer.ok()) return *std::move(peer);
  }
  return *PeerName::Parse("example.org");
}

// Halfway through the leaf's validity, when it has one.
absl::Time TimeFor(X509* leaf) {
  const CertificateInfo info = DescribeCertificate(leaf);
  if (info.not_before == absl::InfinitePast() || info.not_after == absl::InfinitePast() ||
      info.not_after < info.not_before) {
    return absl::FromUnixSeconds(1'700'000'000);
  }
  return info.not_before + (info.not_after - info.not_before) / 2;
}

}  // namespace
}  // namespace keyverifier::tls

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::tls;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<std::vector<X509Ptr>> chain = ParseCertificates(input, "input");
  DrainOpenSslErrors();
  if (!chain.ok()) {
    // Any policy will do for input that does not parse.
    static const CertificatePolicy* policy = [] {
      CertificatePolicyOptions options;
      options.trust_store = *TrustStore::FromCertificates({});
      options.public_suffixes = Suffixes();
      return CertificatePolicy::Create(std::move(options))->release();
    }();
    const Verdict v = policy->CheckEncoded(input, *PeerName::Parse("example.org"),
                                           absl::FromUnixSeconds(1'700'000'000));
    FUZZ_CHECK(!v.valid && v.Has(Reason::kMalformed) && v.presented.empty());
    DrainOpenSslErrors();
    return 0;
  }
  FUZZ_CHECK(!chain->empty());

  for (const X509Ptr& cert : *chain) {
    const std::string der = ToDer(cert.get());
    FUZZ_CHECK(!der.empty());
    absl::StatusOr<std::vector<X509Ptr>> again = ParseCertificates(der, "der");
    FUZZ_CHECK_MSG(again.ok() && again->size() == 1, again.status().ToString());
    FUZZ_CHECK_EQ(ToDer((*again)[0].get()), der);
    FUZZ_CHECK(Sha256FingerprintHex(cert.get()).size() == 64);
  }

  std::vector<X509Ptr> roots;
  roots.push_back(Ref(chain->back().get()));
  const std::string root_sha = Sha256FingerprintHex(chain->back().get());
  absl::StatusOr<std::shared_ptr<const TrustStore>> store =
      TrustStore::FromCertificates(std::move(roots));
  DrainOpenSslErrors();
  if (!store.ok()) return 0;
  CertificatePolicyOptions options;
  options.trust_store = *store;
  options.public_suffixes = Suffixes();
  absl::StatusOr<std::unique_ptr<CertificatePolicy>> policy =
      CertificatePolicy::Create(std::move(options));
  FUZZ_CHECK_MSG(policy.ok(), policy.status().ToString());

  const PeerName peer = PeerFor((*chain)[0].get());
  const absl::Time at = TimeFor((*chain)[0].get());
  const Verdict verdict = (*policy)->Check(*chain, peer, at);
  const Verdict encoded = (*policy)->CheckEncoded(input, peer, at);
  const Verdict again = (*policy)->Check(*chain, peer, at);
  DrainOpenSslErrors();
  FUZZ_CHECK_EQ(Describe(verdict), Describe(encoded));
  FUZZ_CHECK_EQ(Describe(verdict), Describe(again));

  FUZZ_CHECK(verdict.presented.size() == chain->size());
  for (size_t i = 0; i < chain->size(); ++i) {
    FUZZ_CHECK_EQ(verdict.presented[i].sha256, Sha256FingerprintHex((*chain)[i].get()));
  }
  if (verdict.valid) {
    FUZZ_CHECK_MSG(verdict.reasons.empty() && verdict.rule == AppliedRule::kChainVerified,
                   Describe(verdict));
    FUZZ_CHECK_MSG(!verdict.verified_chain.empty() &&
                       verdict.verified_chain.back().sha256 == root_sha,
                   Describe(verdict));
  } else {
    FUZZ_CHECK_MSG(!verdict.reasons.empty(), Describe(verdict));
  }
  return 0;
}
