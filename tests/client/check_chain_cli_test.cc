// keyverifier_cli check-chain through the offline entry point, on chains
// generated at test time, with an in-memory file system and a fixed clock.
#include <map>
#include <string>

#include "client/cli/offline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/tls/trust_store.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::cli {
namespace {

using ::keyverifier::tls::testing::Hierarchy;
using ::keyverifier::tls::testing::MakeHierarchy;
using ::testing::HasSubstr;

class CheckChainCliTest : public ::testing::Test {
 protected:
  CheckChainCliTest() : pki_(MakeHierarchy("matrix.example.org")) {
    files_["chain.pem"] = pki_.leaf.Pem() + pki_.intermediate.Pem();
    files_["roots.pem"] = pki_.root.Pem();
    env_.read_file = [this](const std::string& path) -> absl::StatusOr<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return absl::NotFoundError("cannot open " + path);
      return it->second;
    };
    // 2026-01-01T00:00:00Z, inside the test PKI's validity.
    env_.now_ms = [] { return int64_t{1767225600000}; };
  }

  CommandResult Run(std::vector<std::string> args) {
    return RunOfflineCommand("check-chain", args, env_);
  }

  static core::Value Parse(const std::string& out) {
    absl::StatusOr<core::Value> v = core::ParseJson(out);
    EXPECT_TRUE(v.ok()) << out;
    return v.ok() ? *v : core::Value::Object();
  }

  Hierarchy pki_;
  std::map<std::string, std::string> files_;
  Environment env_;
};

TEST_F(CheckChainCliTest, ValidChainPrintsOneJsonLine) {
  CommandResult r = Run(
      {"--name", "matrix.example.org", "--chain", "chain.pem", "--roots", "roots.pem"});
  EXPECT_EQ(r.exit_code, kExitValid) << r.err;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1);
  core::Value v = Parse(r.out);
  EXPECT_EQ(v.Find("verdict")->string_value(), "valid");
  EXPECT_EQ(v.Find("rule")->string_value(), "chain_verified");
  EXPECT_EQ(v.Find("at")->string_value(), "2026-01-01T00:00:00Z");
  EXPECT_TRUE(v.Find("reasons")->array().empty());
  ASSERT_EQ(v.Find("verified_chain")->array().size(), 3u);
  EXPECT_EQ(v.Find("presented")->array()[0].Find("dns_names")->array()[0].string_value(),
            "matrix.example.org");
}

TEST_F(CheckChainCliTest, WrongNameIsInvalidWithReason) {
  CommandResult r =
      Run({"--name", "evil.example.org", "--chain", "chain.pem", "--roots", "roots.pem"});
  EXPECT_EQ(r.exit_code, kExitInvalid);
  core::Value v = Parse(r.out);
  EXPECT_EQ(v.Find("verdict")->string_value(), "invalid");
  ASSERT_EQ(v.Find("reasons")->array().size(), 1u);
  EXPECT_EQ(v.Find("reasons")->array()[0].Find("reason")->string_value(),
            "hostname_mismatch");
}

TEST_F(CheckChainCliTest, AtSelectsTheValidationTime) {
  CommandResult r = Run({"--name", "matrix.example.org", "--chain", "chain.pem",
                         "--roots", "roots.pem", "--at", "2030-01-01T00:00:00Z"});
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_THAT(r.out, HasSubstr("\"expired\""));
}

TEST_F(CheckChainCliTest, SystemBundleWithoutRoots) {
  files_[tls::kDebianCaBundle] = pki_.root.Pem();
  CommandResult r = Run({"--name", "matrix.example.org", "--chain", "chain.pem"});
  EXPECT_EQ(r.exit_code, kExitValid) << r.err;
  files_[tls::kDebianCaBundle] = MakeHierarchy("x").root.Pem();
  EXPECT_EQ(Run({"--name", "matrix.example.org", "--chain", "chain.pem"}).exit_code,
            kExitInvalid);
}

TEST_F(CheckChainCliTest, UnusableInput) {
  files_["junk.pem"] = "no certificates here";
  struct Case {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"--chain", "chain.pem", "--roots", "roots.pem"}, "--name NAME is required"},
      {{"--name", "a.example", "--roots", "roots.pem"}, "--chain CHAIN.pem is required"},
      {{"--name", "a.example:8448", "--chain", "chain.pem"}, "without a port"},
      {{"--name", "a.example", "--chain", "missing.pem"}, "cannot open missing.pem"},
      {{"--name", "a.example", "--chain", "junk.pem"},
       "neither PEM nor a DER certificate"},
      {{"--name", "a.example", "--chain", "chain.pem", "--roots", "junk.pem"},
       "roots junk.pem"},
      {{"--name", "a.example", "--chain", "chain.pem", "--roots", "roots.pem", "--at",
        "yesterday"},
       "not an RFC 3339 time"},
      {{"--name", "a.example", "--bogus", "x"}, "unknown flag --bogus"},
  };
  for (const Case& c : cases) {
    CommandResult r = Run(c.args);
    EXPECT_EQ(r.exit_code, kExitUnusable) << c.err;
    EXPECT_THAT(r.err, HasSubstr(c.err));
    EXPECT_TRUE(r.out.empty());
  }
}

}  // namespace
}  // namespace keyverifier::cli
