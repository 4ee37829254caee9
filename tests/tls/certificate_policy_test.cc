// CertificatePolicy against a PKI generated at test time: each reason, the
// name rules, the whitelist, the MSC1711 fingerprint fallback and the
// option checks of Create.
#include "service/tls/certificate_policy.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::tls {
namespace {

using ::keyverifier::tls::testing::CertSpec;
using ::keyverifier::tls::testing::DefaultValidationTime;
using ::keyverifier::tls::testing::Hierarchy;
using ::keyverifier::tls::testing::KeyType;
using ::keyverifier::tls::testing::MakeCert;
using ::keyverifier::tls::testing::MakeHierarchy;
using ::keyverifier::tls::testing::MakeIntermediate;
using ::keyverifier::tls::testing::MakeLeaf;
using ::keyverifier::tls::testing::MakeRoot;
using ::keyverifier::tls::testing::TestCert;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Time Civil(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

PeerName Name(const std::string& s) { return *PeerName::Parse(s); }

std::vector<std::string> ReasonNames(const Verdict& v) {
  std::vector<std::string> out;
  for (const Finding& f : v.reasons) out.emplace_back(ReasonName(f.reason));
  return out;
}

std::string MessageFor(const Verdict& v, Reason r) {
  for (const Finding& f : v.reasons) {
    if (f.reason == r) return f.message;
  }
  return "";
}

std::unique_ptr<CertificatePolicy> PolicyTrusting(
    const std::vector<const TestCert*>& roots, CertificatePolicyOptions options = {}) {
  std::vector<X509Ptr> certs;
  for (const TestCert* r : roots) certs.push_back(r->Ref());
  options.trust_store = *TrustStore::FromCertificates(std::move(certs));
  absl::StatusOr<std::unique_ptr<CertificatePolicy>> p =
      CertificatePolicy::Create(std::move(options));
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

std::vector<X509Ptr> Chain(std::initializer_list<const TestCert*> certs) {
  std::vector<X509Ptr> out;
  for (const TestCert* c : certs) out.push_back(c->Ref());
  return out;
}

class CertificatePolicyTest : public ::testing::Test {
 protected:
  CertificatePolicyTest() : pki_(MakeHierarchy("matrix.example.org")) {
    policy_ = PolicyTrusting({&pki_.root});
  }

  Verdict CheckLeaf(const TestCert& leaf, const std::string& name,
                    absl::Time at = DefaultValidationTime()) {
    return policy_->Check(Chain({&leaf, &pki_.intermediate}), Name(name), at);
  }

  Hierarchy pki_;
  std::unique_ptr<CertificatePolicy> policy_;
};

TEST_F(CertificatePolicyTest, ValidChainThroughIntermediate) {
  Verdict v = CheckLeaf(pki_.leaf, "matrix.example.org");
  EXPECT_TRUE(v.valid) << ::testing::PrintToString(ReasonNames(v));
  EXPECT_TRUE(v.reasons.empty());
  EXPECT_EQ(v.rule, AppliedRule::kChainVerified);
  ASSERT_EQ(v.verified_chain.size(), 3u);
  EXPECT_EQ(v.verified_chain[2].subject, "CN=Test Root");
  ASSERT_EQ(v.presented.size(), 2u);
  EXPECT_THAT(v.presented[0].dns_names, ElementsAre("matrix.example.org"));
  EXPECT_EQ(v.presented[0].issuer, "CN=Test Intermediate");
  EXPECT_FALSE(v.presented[0].is_ca);
  EXPECT_TRUE(v.presented[1].is_ca);
  EXPECT_EQ(v.presented[0].not_after, Civil(2027, 1, 1));
  EXPECT_EQ(v.presented[0].sha256.size(), 64u);
  EXPECT_EQ(v.presented[0].sha256, Sha256FingerprintHex(pki_.leaf.cert.get()));
}

TEST_F(CertificatePolicyTest, NameMatchIsCaseInsensitiveAndAllowsTrailingDot) {
  EXPECT_TRUE(CheckLeaf(pki_.leaf, "Matrix.Example.ORG.").valid);
}

TEST_F(CertificatePolicyTest, HostnameMismatchListsPresentedNames) {
  TestCert leaf = MakeLeaf({"a.example.org", "b.example.org"}, pki_.intermediate);
  Verdict v = CheckLeaf(leaf, "matrix.example.org");
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.rule, AppliedRule::kNone);
  EXPECT_THAT(ReasonNames(v), ElementsAre("hostname_mismatch"));
  EXPECT_THAT(MessageFor(v, Reason::kHostnameMismatch),
              HasSubstr("[a.example.org, b.example.org]"));
  EXPECT_TRUE(v.verified_chain.empty());
}

TEST_F(CertificatePolicyTest, WildcardCoversExactlyOneLeftMostLabel) {
  TestCert leaf = MakeLeaf({"*.example.org"}, pki_.intermediate);
  EXPECT_TRUE(CheckLeaf(leaf, "matrix.example.org").valid);
  EXPECT_FALSE(CheckLeaf(leaf, "a.matrix.example.org").valid);
  EXPECT_FALSE(CheckLeaf(leaf, "example.org").valid);
}

TEST_F(CertificatePolicyTest, PartialWildcardIsRefused) {
  TestCert leaf = MakeLeaf({"ma*.example.org"}, pki_.intermediate);
  Verdict v = CheckLeaf(leaf, "matrix.example.org");
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.Has(Reason::kHostnameMismatch));
  EXPECT_TRUE(v.Has(Reason::kMalformed));  // not a host name in a SAN
}

TEST_F(CertificatePolicyTest, CommonNameIsNeverUsed) {
  CertSpec spec;
  spec.common_name = "matrix.example.org";  // no SAN at all
  TestCert leaf = MakeCert(spec, &pki_.intermediate);
  Verdict v = CheckLeaf(leaf, "matrix.example.org");
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(ReasonNames(v), ElementsAre("hostname_mismatch"));
  EXPECT_THAT(MessageFor(v, Reason::kHostnameMismatch),
              HasSubstr("no subject alternative names"));
}

TEST_F(CertificatePolicyTest, IpLiteralMatchesIpSansOnly) {
  CertSpec spec;
  spec.dns_names = {"192.0.2.7"};
  spec.ip_addresses = {"192.0.2.8", "2001:db8::1"};
  TestCert leaf = MakeCert(spec, &pki_.intermediate);
  EXPECT_TRUE(CheckLeaf(leaf, "192.0.2.8").valid);
  EXPECT_TRUE(CheckLeaf(leaf, "[2001:db8:0::1]").valid);
  Verdict v = CheckLeaf(leaf, "192.0.2.7");  // only a dNSName says so
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.Has(Reason::kHostnameMismatch));
  EXPECT_THAT(MessageFor(v, Reason::kHostnameMismatch), HasSubstr("IP SANs only"));
  EXPECT_THAT(v.presented[0].ip_addresses, ElementsAre("192.0.2.8", "2001:db8::1"));
}

TEST_F(CertificatePolicyTest, ExpiredAndNotYetValidAreInclusiveAtTheSecond) {
  EXPECT_TRUE(CheckLeaf(pki_.leaf, "matrix.example.org", Civil(2027, 1, 1)).valid);
  EXPECT_TRUE(CheckLeaf(pki_.leaf, "matrix.example.org", Civil(2025, 1, 1)).valid);
  Verdict expired =
      CheckLeaf(pki_.leaf, "matrix.example.org", Civil(2027, 1, 1, 0, 0, 1));
  EXPECT_FALSE(expired.valid);
  EXPECT_THAT(ReasonNames(expired), ElementsAre("expired"));
  EXPECT_THAT(MessageFor(expired, Reason::kExpired), HasSubstr("2027-01-01T00:00:00Z"));
  Verdict early =
      CheckLeaf(pki_.leaf, "matrix.example.org", Civil(2024, 12, 31, 23, 59, 59));
  EXPECT_FALSE(early.valid);
  EXPECT_THAT(ReasonNames(early), ElementsAre("not_yet_valid"));
}

TEST_F(CertificatePolicyTest, ExpiredIntermediate) {
  CertSpec spec;
  spec.common_name = "Old Intermediate";
  spec.is_ca = true;
  spec.not_before = Civil(2020, 1, 1);
  spec.not_after = Civil(2025, 6, 1);
  TestCert old = MakeCert(spec, &pki_.root);
  TestCert leaf = MakeLeaf({"matrix.example.org"}, old);
  Verdict v = policy_->Check(Chain({&leaf, &old}), Name("matrix.example.org"),
                             DefaultValidationTime());
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.Has(Reason::kExpired));
  EXPECT_THAT(MessageFor(v, Reason::kExpired), HasSubstr("Old Intermediate"));
}

TEST_F(CertificatePolicyTest, ServerAuthEkuIsRequired) {
  CertSpec spec;
  spec.dns_names = {"matrix.example.org"};
  spec.eku = {"clientAuth"};
  Verdict wrong = CheckLeaf(MakeCert(spec, &pki_.intermediate), "matrix.example.org");
  EXPECT_FALSE(wrong.valid);
  EXPECT_TRUE(wrong.Has(Reason::kBadEku));
  spec.eku.clear();
  Verdict none = CheckLeaf(MakeCert(spec, &pki_.intermediate), "matrix.example.org");
  EXPECT_FALSE(none.valid);
  EXPECT_THAT(MessageFor(none, Reason::kBadEku), HasSubstr("no extendedKeyUsage"));
}

TEST_F(CertificatePolicyTest, SelfSignedLeafIsUntrusted) {
  CertSpec spec;
  spec.dns_names = {"matrix.example.org"};
  TestCert self = MakeCert(spec, nullptr);
  Verdict v =
      policy_->Check(Chain({&self}), Name("matrix.example.org"), DefaultValidationTime());
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.Has(Reason::kUntrustedRoot));
}

TEST_F(CertificatePolicyTest, ChainToAnotherRootIsUntrusted) {
  Hierarchy other = MakeHierarchy("matrix.example.org");
  Verdict v = policy_->Check(Chain({&other.leaf, &other.intermediate, &other.root}),
                             Name("matrix.example.org"), DefaultValidationTime());
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.Has(Reason::kUntrustedRoot)) << ::testing::PrintToString(ReasonNames(v));
}

TEST_F(CertificatePolicyTest, MissingIntermediate) {
  Verdict v = policy_->Check(Chain({&pki_.leaf}), Name("matrix.example.org"),
                             DefaultValidationTime());
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(ReasonNames(v), ElementsAre("missing_intermediate"));
}

TEST_F(CertificatePolicyTest, IntermediatesInAnyOrder) {
  TestCert inner = MakeIntermediate("Inner", pki_.intermediate);
  TestCert leaf = MakeLeaf({"matrix.example.org"}, inner);
  Verdict v = policy_->Check(Chain({&leaf, &pki_.intermediate, &inner}),
                             Name("matrix.example.org"), DefaultValidationTime());
  EXPECT_TRUE(v.valid) << ::testing::PrintToString(ReasonNames(v));
  EXPECT_EQ(v.verified_chain.size(), 4u);
}

TEST_F(CertificatePolicyTest, FindsThePathThroughTheTrustedCrossSign) {
  // The same intermediate (name and key) certified by an unknown root and by
  // the trusted one; the unknown root's version comes first.
  TestCert unknown_root = MakeRoot("Unknown Root");
  CertSpec spec;
  spec.common_name = "Test Intermediate";
  spec.is_ca = true;
  spec.same_key_as = &pki_.intermediate;
  TestCert cross = MakeCert(spec, &unknown_root);
  Verdict v = policy_->Check(Chain({&pki_.leaf, &cross, &pki_.intermediate}),
                             Name("matrix.example.org"), DefaultValidationTime());
  EXPECT_TRUE(v.valid) << ::testing::PrintToString(ReasonNames(v));
  ASSERT_EQ(v.verified_chain.size(), 3u);
  EXPECT_EQ(v.verified_chain[1].issuer, "CN=Test Root");
  // Without the trusted version there is no path; OpenSSL's findings stay.
  Verdict none = policy_->Check(Chain({&pki_.leaf, &cross}), Name("matrix.example.org"),
                                DefaultValidationTime());
  EXPECT_FALSE(none.valid);
  EXPECT_TRUE(none.Has(Reason::kMissingIntermediate))
      << ::testing::PrintToString(ReasonNames(none));
}

TEST_F(CertificatePolicyTest, Sha1SignatureIsWeak) {
  CertSpec spec;
  spec.dns_names = {"matrix.example.org"};
  spec.digest = "SHA1";
  Verdict v = CheckLeaf(MakeCert(spec, &pki_.intermediate), "matrix.example.org");
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.Has(Reason::kWeakSignatureAlgorithm));
  EXPECT_THAT(MessageFor(v, Reason::kWeakSignatureAlgorithm), HasSubstr("SHA1"));
}

TEST_F(CertificatePolicyTest, Rsa1024IsWeakRsa2048IsNot) {
  CertSpec spec;
  spec.dns_names = {"matrix.example.org"};
  spec.key_type = KeyType::kRsa;
  spec.rsa_bits = 1024;
  Verdict weak = CheckLeaf(MakeCert(spec, &pki_.intermediate), "matrix.example.org");
  EXPECT_FALSE(weak.valid);
  EXPECT_THAT(ReasonNames(weak), ElementsAre("weak_key"));
  EXPECT_THAT(MessageFor(weak, Reason::kWeakKey), HasSubstr("1024 bits"));
  spec.rsa_bits = 2048;
  EXPECT_TRUE(CheckLeaf(MakeCert(spec, &pki_.intermediate), "matrix.example.org").valid);
}

TEST_F(CertificatePolicyTest, CaCertificateAsLeaf) {
  CertSpec spec;
  spec.dns_names = {"matrix.example.org"};
  spec.is_ca = true;
  Verdict v = CheckLeaf(MakeCert(spec, &pki_.intermediate), "matrix.example.org");
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.Has(Reason::kCaAsLeaf));
}

TEST_F(CertificatePolicyTest, ExcludedNameCoveredByWildcard) {
  CertSpec spec;
  spec.common_name = "Constrained";
  spec.is_ca = true;
  spec.name_constraints = "critical,excluded;DNS:bar.example.org";
  TestCert ca = MakeCert(spec, &pki_.root);
  TestCert leaf = MakeLeaf({"*.example.org"}, ca);
  Verdict bar = policy_->Check(Chain({&leaf, &ca}), Name("bar.example.org"),
                               DefaultValidationTime());
  EXPECT_FALSE(bar.valid);
  EXPECT_THAT(ReasonNames(bar), ElementsAre("name_constraint_violation"));
  EXPECT_TRUE(
      policy_
          ->Check(Chain({&leaf, &ca}), Name("foo.example.org"), DefaultValidationTime())
          .valid);
}

TEST_F(CertificatePolicyTest, WildcardOverPublicSuffixIsRefused) {
  CertificatePolicyOptions options;
  options.public_suffixes = *PublicSuffixList::FromText("co.uk\n");
  auto policy = PolicyTrusting({&pki_.root}, options);
  TestCert leaf = MakeLeaf({"*.co.uk"}, pki_.intermediate);
  Verdict v = policy->Check(Chain({&leaf, &pki_.intermediate}), Name("example.co.uk"),
                            DefaultValidationTime());
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(MessageFor(v, Reason::kMalformed), HasSubstr("public suffix \"co.uk\""));
  TestCert ok = MakeLeaf({"*.example.co.uk"}, pki_.intermediate);
  EXPECT_TRUE(policy
                  ->Check(Chain({&ok, &pki_.intermediate}), Name("a.example.co.uk"),
                          DefaultValidationTime())
                  .valid);
}

TEST_F(CertificatePolicyTest, UnparseableInputIsMalformed) {
  Verdict v = policy_->CheckEncoded(
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      Name("matrix.example.org"), DefaultValidationTime());
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(ReasonNames(v), ElementsAre("malformed"));
  Verdict empty = policy_->Check({}, Name("matrix.example.org"), DefaultValidationTime());
  EXPECT_THAT(ReasonNames(empty), ElementsAre("malformed"));
}

TEST_F(CertificatePolicyTest, PemAndDerInputs) {
  std::string pem = pki_.leaf.Pem() + pki_.intermediate.Pem();
  EXPECT_TRUE(
      policy_->CheckEncoded(pem, Name("matrix.example.org"), DefaultValidationTime())
          .valid);
  // A single DER certificate cannot carry the intermediate.
  Verdict der = policy_->CheckEncoded(pki_.leaf.Der(), Name("matrix.example.org"),
                                      DefaultValidationTime());
  EXPECT_THAT(ReasonNames(der), ElementsAre("missing_intermediate"));
}

TEST_F(CertificatePolicyTest, NegotiatedTlsVersionBelowMinimum) {
  CheckContext context;
  context.negotiated_tls_version = TLS1_1_VERSION;
  Verdict v =
      policy_->Check(Chain({&pki_.leaf, &pki_.intermediate}), Name("matrix.example.org"),
                     DefaultValidationTime(), context);
  EXPECT_FALSE(v.valid);
  EXPECT_THAT(ReasonNames(v), ElementsAre("tls_version_too_low"));
  context.negotiated_tls_version = TLS1_2_VERSION;
  EXPECT_TRUE(policy_
                  ->Check(Chain({&pki_.leaf, &pki_.intermediate}),
                          Name("matrix.example.org"), DefaultValidationTime(), context)
                  .valid);
}

TEST_F(CertificatePolicyTest, WhitelistGlobSkipsChecks) {
  CertificatePolicyOptions options;
  options.whitelist = {"*.onion", "*.internal.example"};
  auto policy = PolicyTrusting({&pki_.root}, options);
  TestCert self = MakeCert(CertSpec{}, nullptr);  // no names, untrusted
  Verdict v = policy->Check(Chain({&self}), Name("abc.onion"), DefaultValidationTime());
  EXPECT_TRUE(v.valid);
  EXPECT_EQ(v.rule, AppliedRule::kWhitelistGlob);
  EXPECT_EQ(v.rule_detail, "*.onion");
  EXPECT_TRUE(v.reasons.empty());
  EXPECT_EQ(
      policy->Check(Chain({&self}), Name("a.b.internal.example"), DefaultValidationTime())
          .rule_detail,
      "*.internal.example");
  Verdict parent =
      policy->Check(Chain({&self}), Name("internal.example"), DefaultValidationTime());
  EXPECT_FALSE(parent.valid);
  EXPECT_EQ(parent.rule, AppliedRule::kNone);
}

TEST_F(CertificatePolicyTest, WhitelistCidrSkipsChecks) {
  CertificatePolicyOptions options;
  options.whitelist = {"10.0.0.0/8", "fc00::/7"};
  auto policy = PolicyTrusting({&pki_.root}, options);
  TestCert self = MakeCert(CertSpec{}, nullptr);
  Verdict v4 = policy->Check(Chain({&self}), Name("10.1.2.3"), DefaultValidationTime());
  EXPECT_TRUE(v4.valid);
  EXPECT_EQ(v4.rule, AppliedRule::kWhitelistCidr);
  EXPECT_EQ(v4.rule_detail, "10.0.0.0/8");
  Verdict v6 = policy->Check(Chain({&self}), Name("fd12::1"), DefaultValidationTime());
  EXPECT_TRUE(v6.valid);
  EXPECT_EQ(v6.rule_detail, "fc00::/7");
  EXPECT_FALSE(
      policy->Check(Chain({&self}), Name("11.0.0.1"), DefaultValidationTime()).valid);
}

class FingerprintFallbackTest : public CertificatePolicyTest {
 protected:
  FingerprintFallbackTest() : self_(MakeCert(SelfSpec(), nullptr)) {
    fingerprints_.insert(absl::HexStringToBytes(Sha256FingerprintHex(self_.cert.get())));
  }
  static CertSpec SelfSpec() {
    CertSpec spec;
    spec.dns_names = {"matrix.example.org"};
    return spec;
  }
  std::unique_ptr<CertificatePolicy> FallbackPolicy(bool enabled) {
    CertificatePolicyOptions options;
    options.fingerprint_fallback = enabled;
    options.fingerprint_fallback_until = Civil(2026, 6, 1);
    return PolicyTrusting({&pki_.root}, options);
  }
  Verdict Run(const CertificatePolicy& p, absl::Time at,
              const absl::flat_hash_set<std::string>* fps) {
    CheckContext context;
    if (fps != nullptr) context.fingerprint_source = [fps] { return *fps; };
    return p.Check(Chain({&self_}), Name("matrix.example.org"), at, context);
  }

  TestCert self_;
  absl::flat_hash_set<std::string> fingerprints_;
};

TEST_F(FingerprintFallbackTest, AcceptsPublishedFingerprintBeforeDeadline) {
  auto policy = FallbackPolicy(true);
  Verdict v = Run(*policy, Civil(2026, 5, 31), &fingerprints_);
  EXPECT_TRUE(v.valid);
  EXPECT_EQ(v.rule, AppliedRule::kFingerprintFallback);
  EXPECT_EQ(v.rule_detail, Sha256FingerprintHex(self_.cert.get()));
  EXPECT_TRUE(v.Has(Reason::kUntrustedRoot));  // what the fallback covered for
}

TEST_F(FingerprintFallbackTest, RefusedAfterDeadline) {
  auto policy = FallbackPolicy(true);
  Verdict v = Run(*policy, Civil(2026, 6, 1), &fingerprints_);
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.rule, AppliedRule::kNone);
}

TEST_F(FingerprintFallbackTest, RefusedForOtherFingerprintOrWhenOff) {
  absl::flat_hash_set<std::string> other = {std::string(32, 'x')};
  EXPECT_FALSE(Run(*FallbackPolicy(true), Civil(2026, 1, 1), &other).valid);
  EXPECT_FALSE(Run(*FallbackPolicy(true), Civil(2026, 1, 1), nullptr).valid);
  EXPECT_FALSE(Run(*FallbackPolicy(false), Civil(2026, 1, 1), &fingerprints_).valid);
}

TEST_F(CertificatePolicyTest, ChecksRunConcurrentlyOnOnePolicy) {
  TestCert other = MakeLeaf({"other.example.org"}, pki_.intermediate);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        bool want = (i + t) % 2 == 0;
        Verdict v = CheckLeaf(want ? pki_.leaf : other, "matrix.example.org");
        if (v.valid != want) ++wrong;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(CertificatePolicyCreateTest, RefusesBadOptions) {
  auto err = [](CertificatePolicyOptions o) {
    o.trust_store = *TrustStore::FromCertificates({});
    absl::StatusOr<std::unique_ptr<CertificatePolicy>> p = CertificatePolicy::Create(o);
    return p.ok() ? std::string("ok") : std::string(p.status().message());
  };
  CertificatePolicyOptions bad_glob;
  bad_glob.whitelist = {"foo*.example"};
  EXPECT_THAT(err(bad_glob), HasSubstr("\"foo*.example\""));
  CertificatePolicyOptions bad_cidr;
  bad_cidr.whitelist = {"10.0.0.0/33"};
  EXPECT_THAT(err(bad_cidr), HasSubstr("prefix length must be 0 to 32"));
  CertificatePolicyOptions tls;
  tls.min_tls_version = TLS1_1_VERSION;
  EXPECT_THAT(err(tls), HasSubstr("min_tls_version"));
  CertificatePolicyOptions ct;
  ct.ct_mode = CtMode::kEnforce;
  EXPECT_THAT(err(ct), HasSubstr("needs ct_log_list_file"));
  ct.ct_log_list_file = "no-such-ct-logs.cnf";
  EXPECT_THAT(err(ct), HasSubstr("no-such-ct-logs.cnf"));
  CertificatePolicyOptions fallback;
  fallback.fingerprint_fallback = true;
  EXPECT_THAT(err(fallback), HasSubstr("deadline"));
  CertificatePolicyOptions rsa;
  rsa.min_rsa_bits = 1024;
  EXPECT_THAT(err(rsa), HasSubstr("min_rsa_bits"));
}

TEST(CertificatePolicyCreateTest, UnreadableCaFile) {
  CertificatePolicyOptions o;
  o.trust.mode = TrustStoreOptions::Mode::kReplace;
  o.trust.ca_files = {"does-not-exist.pem"};
  absl::StatusOr<std::unique_ptr<CertificatePolicy>> p = CertificatePolicy::Create(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(p.status().message(), HasSubstr("does-not-exist.pem"));
}

}  // namespace
}  // namespace keyverifier::tls
