// TrustStore modes: the system bundle, the operator's CA files replacing it,
// or added to it; and how unusable files are reported. The "system bundle"
// is a generated file here, so the test does not depend on the machine's.
#include "service/tls/trust_store.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/tls/certificate_policy.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::tls {
namespace {

using ::keyverifier::tls::testing::DefaultValidationTime;
using ::keyverifier::tls::testing::Hierarchy;
using ::keyverifier::tls::testing::MakeHierarchy;
using ::testing::HasSubstr;

std::string WriteTemp(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : ".") + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

class TrustStoreTest : public ::testing::Test {
 protected:
  TrustStoreTest()
      : os_(MakeHierarchy("os.example.org")), admin_(MakeHierarchy("admin.example.org")) {
    options_.system_bundle = WriteTemp("bundle.pem", os_.root.Pem());
    admin_file_ = WriteTemp("admin.pem", admin_.root.Pem());
  }

  // Whether a policy on `options` accepts each hierarchy's leaf.
  std::pair<bool, bool> Accepts(const TrustStoreOptions& options) {
    CertificatePolicyOptions p;
    p.trust = options;
    auto policy = *CertificatePolicy::Create(p);
    auto check = [&](const Hierarchy& h, const std::string& name) {
      std::vector<X509Ptr> chain;
      chain.push_back(h.leaf.Ref());
      chain.push_back(h.intermediate.Ref());
      return policy->Check(chain, *PeerName::Parse(name), DefaultValidationTime()).valid;
    };
    return {check(os_, "os.example.org"), check(admin_, "admin.example.org")};
  }

  Hierarchy os_;
  Hierarchy admin_;
  TrustStoreOptions options_;
  std::string admin_file_;
};

TEST_F(TrustStoreTest, SystemOnly) {
  EXPECT_EQ(Accepts(options_), std::make_pair(true, false));
}

TEST_F(TrustStoreTest, ReplaceUsesOnlyTheCaFiles) {
  options_.mode = TrustStoreOptions::Mode::kReplace;
  options_.ca_files = {admin_file_};
  EXPECT_EQ(Accepts(options_), std::make_pair(false, true));
}

TEST_F(TrustStoreTest, AddKeepsTheSystemBundle) {
  options_.mode = TrustStoreOptions::Mode::kAdd;
  options_.ca_files = {admin_file_};
  EXPECT_EQ(Accepts(options_), std::make_pair(true, true));
  absl::StatusOr<std::shared_ptr<const TrustStore>> store = TrustStore::Create(options_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->roots().size(), 2u);
}

TEST_F(TrustStoreTest, DerCaFile) {
  options_.mode = TrustStoreOptions::Mode::kReplace;
  options_.ca_files = {WriteTemp("admin.der", admin_.root.Der())};
  EXPECT_EQ(Accepts(options_), std::make_pair(false, true));
}

TEST_F(TrustStoreTest, UnusableOptions) {
  TrustStoreOptions o = options_;
  o.ca_files = {admin_file_};  // system mode with CA files
  EXPECT_THAT(TrustStore::Create(o).status().message(), HasSubstr("replace or add"));
  o.mode = TrustStoreOptions::Mode::kReplace;
  o.ca_files.clear();
  EXPECT_THAT(TrustStore::Create(o).status().message(),
              HasSubstr("at least one CA file"));
  o.ca_files = {WriteTemp("garbage.pem", "not a certificate")};
  absl::Status garbage = TrustStore::Create(o).status();
  EXPECT_EQ(garbage.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(garbage.message(), HasSubstr("garbage.pem"));
  o.ca_files = {"missing.pem"};
  EXPECT_EQ(TrustStore::Create(o).status().code(), absl::StatusCode::kNotFound);
  o.mode = TrustStoreOptions::Mode::kSystem;
  o.ca_files.clear();
  o.system_bundle = "missing-bundle.crt";
  EXPECT_THAT(TrustStore::Create(o).status().message(), HasSubstr("missing-bundle.crt"));
}

}  // namespace
}  // namespace keyverifier::tls
