// Certificate Transparency through CertificatePolicy: leaves with embedded
// SCTs signed at test time by generated logs, in report and enforce modes.
#include "service/tls/ct_policy.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tls/certificate_policy.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::tls {
namespace {

using ::keyverifier::tls::testing::CertSpec;
using ::keyverifier::tls::testing::CtLog;
using ::keyverifier::tls::testing::CtLogList;
using ::keyverifier::tls::testing::DefaultValidationTime;
using ::keyverifier::tls::testing::Hierarchy;
using ::keyverifier::tls::testing::MakeCertWithScts;
using ::keyverifier::tls::testing::MakeCtLog;
using ::keyverifier::tls::testing::MakeHierarchy;
using ::keyverifier::tls::testing::TestCert;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string WriteTemp(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : ".") + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

class CtPolicyTest : public ::testing::Test {
 protected:
  CtPolicyTest()
      : pki_(MakeHierarchy("matrix.example.org")),
        log_a_(MakeCtLog("log_a")),
        log_b_(MakeCtLog("log_b")),
        unknown_(MakeCtLog("unknown")) {
    log_list_ = WriteTemp("ct_logs.cnf", CtLogList({&log_a_, &log_b_}));
  }

  std::unique_ptr<CertificatePolicy> Policy(CtMode mode) {
    CertificatePolicyOptions options;
    std::vector<X509Ptr> roots;
    roots.push_back(pki_.root.Ref());
    options.trust_store = *TrustStore::FromCertificates(std::move(roots));
    options.ct_mode = mode;
    options.ct_log_list_file = log_list_;
    absl::StatusOr<std::unique_ptr<CertificatePolicy>> p =
        CertificatePolicy::Create(options);
    EXPECT_TRUE(p.ok()) << p.status();
    return *std::move(p);
  }

  TestCert Leaf(const std::vector<const CtLog*>& logs, bool corrupt = false) {
    CertSpec spec;
    spec.dns_names = {"matrix.example.org"};
    return MakeCertWithScts(spec, pki_.intermediate, logs,
                            DefaultValidationTime() - absl::Hours(24), corrupt);
  }

  Verdict Check(const CertificatePolicy& policy, const TestCert& leaf) {
    std::vector<X509Ptr> chain;
    chain.push_back(leaf.Ref());
    chain.push_back(pki_.intermediate.Ref());
    return policy.Check(chain, *PeerName::Parse("matrix.example.org"),
                        DefaultValidationTime());
  }

  Hierarchy pki_;
  CtLog log_a_;
  CtLog log_b_;
  CtLog unknown_;
  std::string log_list_;
};

TEST_F(CtPolicyTest, SctsFromTwoKnownLogsVerify) {
  TestCert leaf = Leaf({&log_a_, &log_b_});
  std::shared_ptr<const CtLogs> logs = *CtLogs::FromFile(log_list_);
  CtEvaluation e = EvaluateEmbeddedScts(leaf.cert.get(), pki_.intermediate.cert.get(),
                                        *logs, DefaultValidationTime());
  EXPECT_EQ(e.embedded_scts, 2);
  EXPECT_EQ(e.valid_logs.size(), 2u);
  EXPECT_EQ(e.unverified_scts, 0);
  Verdict v = Check(*Policy(CtMode::kEnforce), leaf);
  EXPECT_TRUE(v.valid);
  EXPECT_THAT(v.reasons, IsEmpty());
  EXPECT_THAT(v.warnings, IsEmpty());
}

TEST_F(CtPolicyTest, EnforceRefusesFewerThanTwoDistinctLogs) {
  for (const TestCert& leaf :
       {Leaf({&log_a_}), Leaf({&log_a_, &log_a_}), Leaf({&log_a_, &unknown_}),
        Leaf({&log_a_, &log_b_}, /*corrupt=*/true), Leaf({})}) {
    Verdict v = Check(*Policy(CtMode::kEnforce), leaf);
    EXPECT_FALSE(v.valid);
    ASSERT_EQ(v.reasons.size(), 1u);
    EXPECT_EQ(v.reasons[0].reason, Reason::kCtPolicyUnmet);
    EXPECT_THAT(v.reasons[0].message, HasSubstr("at least 2 required"));
  }
}

TEST_F(CtPolicyTest, ReportWarnsButAccepts) {
  Verdict v = Check(*Policy(CtMode::kReport), Leaf({&log_a_, &unknown_}));
  EXPECT_TRUE(v.valid);
  EXPECT_THAT(v.reasons, IsEmpty());
  ASSERT_EQ(v.warnings.size(), 1u);
  EXPECT_EQ(v.warnings[0].reason, Reason::kCtPolicyUnmet);
  EXPECT_THAT(v.warnings[0].message, HasSubstr("1 verified"));
}

TEST_F(CtPolicyTest, OffIgnoresScts) {
  CertificatePolicyOptions options;
  std::vector<X509Ptr> roots;
  roots.push_back(pki_.root.Ref());
  options.trust_store = *TrustStore::FromCertificates(std::move(roots));
  auto policy = *CertificatePolicy::Create(options);
  Verdict v = Check(*policy, Leaf({}));
  EXPECT_TRUE(v.valid);
  EXPECT_THAT(v.warnings, IsEmpty());
}

TEST_F(CtPolicyTest, LogListErrors) {
  EXPECT_EQ(CtLogs::FromFile("no-such-list.cnf").status().code(),
            absl::StatusCode::kNotFound);
  absl::Status bad =
      CtLogs::FromFile(WriteTemp("bad.cnf", "enabled_logs = x\n")).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("bad.cnf"));
}

}  // namespace
}  // namespace keyverifier::tls
