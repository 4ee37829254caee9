// PolicyPeerVerifier: the policy judging a handshake's chain, with the
// MSC1711 fallback fed by fingerprints from verified key responses.
#include "service/tls/policy_peer_verifier.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/tls/openssl_util.h"
#include "tests/fakes/fake_clock.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::tls {
namespace {

using testing::CertSpec;
using testing::MakeCert;
using testing::MakeHierarchy;

absl::Time Civil(int y, int m, int d) {
  return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
}

// Records the names the fallback rule accepted, and every verdict.
class FallbackCounter : public observe::Observer {
 public:
  void OnCertificateFallback(absl::string_view tls_name) override {
    names.push_back(std::string(tls_name));
  }
  void OnPeerCertificateVerdict(absl::string_view tls_name, bool valid) override {
    verdicts.push_back(absl::StrCat(tls_name, valid ? " valid" : " invalid"));
  }
  std::vector<std::string> names;
  std::vector<std::string> verdicts;
};

class PolicyPeerVerifierTest : public ::testing::Test {
 protected:
  PolicyPeerVerifierTest()
      : pki_(MakeHierarchy("matrix.example.org")),
        self_(MakeCert(SelfSpec(), nullptr)),
        clock_(Civil(2026, 3, 1)) {}
  static CertSpec SelfSpec() {
    CertSpec spec;
    spec.dns_names = {"matrix.example.org"};
    return spec;
  }
  std::unique_ptr<CertificatePolicy> Policy(bool fallback) {
    std::vector<X509Ptr> roots;
    roots.push_back(pki_.root.Ref());
    CertificatePolicyOptions o;
    o.trust_store = *TrustStore::FromCertificates(std::move(roots));
    o.fingerprint_fallback = fallback;
    o.fingerprint_fallback_until = Civil(2026, 6, 1);
    return *CertificatePolicy::Create(std::move(o));
  }
  FingerprintSource Published() {
    std::string fp = absl::HexStringToBytes(Sha256FingerprintHex(self_.cert.get()));
    return [this, fp](absl::string_view host) {
      asked_.push_back(std::string(host));
      return host == "matrix.example.org" ? absl::flat_hash_set<std::string>{fp}
                                          : absl::flat_hash_set<std::string>{};
    };
  }

  testing::Hierarchy pki_;
  testing::TestCert self_;
  keyverifier::testing::FakeClock clock_;
  std::vector<std::string> asked_;
};

TEST_F(PolicyPeerVerifierTest, ChainToATrustedRootPasses) {
  auto policy = Policy(false);
  PolicyPeerVerifier v(*policy, clock_);
  EXPECT_TRUE(v.VerifyPeer({pki_.leaf.Der(), pki_.intermediate.Der()}, "matrix.example.org").ok());
}

TEST_F(PolicyPeerVerifierTest, EveryVerdictIsReported) {
  auto policy = Policy(false);
  FallbackCounter observer;
  PolicyPeerVerifier v(*policy, clock_, nullptr, observer);
  EXPECT_TRUE(v.VerifyPeer({pki_.leaf.Der(), pki_.intermediate.Der()}, "matrix.example.org").ok());
  EXPECT_FALSE(v.VerifyPeer({self_.Der()}, "matrix.example.org").ok());
  EXPECT_EQ(observer.verdicts,
            (std::vector<std::string>{"matrix.example.org valid", "matrix.example.org invalid"}));
}

TEST_F(PolicyPeerVerifierTest, RejectionListsTheReasons) {
  auto policy = Policy(false);
  PolicyPeerVerifier v(*policy, clock_);
  absl::Status s = v.VerifyPeer({pki_.leaf.Der(), pki_.intermediate.Der()}, "other.example.org");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(s.message(), "hostname_mismatch")) << s;
  s = v.VerifyPeer({self_.Der()}, "matrix.example.org");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(s.message(), "untrusted_root")) << s;
}

TEST_F(PolicyPeerVerifierTest, PublishedFingerprintRescuesASelfSignedCertificateBeforeTheDeadline) {
  auto policy = Policy(true);
  FallbackCounter fallbacks;
  PolicyPeerVerifier v(*policy, clock_, Published(), fallbacks);
  absl::Status s = v.VerifyPeer({self_.Der()}, "matrix.example.org");
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(fallbacks.names, std::vector<std::string>{"matrix.example.org"});  // the rule applied
  EXPECT_EQ(asked_, std::vector<std::string>{"matrix.example.org"});
  // After the deadline the fallback is over.
  clock_.Advance(absl::Hours(24 * 120));
  EXPECT_EQ(v.VerifyPeer({self_.Der()}, "matrix.example.org").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(PolicyPeerVerifierTest, FallbackOffOrUnpublishedFingerprintStillFails) {
  auto off = Policy(false);
  PolicyPeerVerifier v_off(*off, clock_, Published());
  EXPECT_FALSE(v_off.VerifyPeer({self_.Der()}, "matrix.example.org").ok());
  EXPECT_TRUE(asked_.empty());  // not even asked
  auto on = Policy(true);
  PolicyPeerVerifier v_on(*on, clock_, Published());
  testing::TestCert other = MakeCert(SelfSpec(), nullptr);
  EXPECT_FALSE(v_on.VerifyPeer({other.Der()}, "matrix.example.org").ok());
}

TEST_F(PolicyPeerVerifierTest, GarbageChainIsRefused) {
  auto policy = Policy(false);
  PolicyPeerVerifier v(*policy, clock_);
  EXPECT_EQ(v.VerifyPeer({"not a certificate"}, "matrix.example.org").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(v.VerifyPeer({pki_.leaf.Der()}, "bad name!").code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace keyverifier::tls
