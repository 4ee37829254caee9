// Loading the configuration: defaults, the text file, flags over it, and
// validation errors that name the key (and line) that is wrong.
#include "service/config/config.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace keyverifier::config {
namespace {

absl::StatusOr<v1::Config> Load(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& files = {}) {
  return LoadConfig(args, [&](const std::string& path) -> absl::StatusOr<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return absl::NotFoundError(path + ": no such file");
    return it->second;
  });
}

TEST(ConfigTest, DefaultsAreValid) {
  const v1::Config d = Defaults();
  EXPECT_TRUE(Validate(d).ok()) << Validate(d);
  EXPECT_EQ(d.listen(), "127.0.0.1:8470");
  EXPECT_EQ(d.metrics_listen(), "127.0.0.1:9470");
  EXPECT_FALSE(d.data_dir().empty());
}

TEST(ConfigTest, FlagsWinOverTheFile) {
  absl::StatusOr<v1::Config> c =
      Load({"--config", "kv.textproto", "--listen=127.0.0.1:9999", "--workers", "3"},
           {{"kv.textproto", "listen: \"127.0.0.1:1111\"\nlog_level: \"debug\"\n"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen(), "127.0.0.1:9999");  // the flag
  EXPECT_EQ(c->log_level(), "debug");        // the file
  EXPECT_EQ(c->workers(), 3u);
  EXPECT_EQ(c->metrics_listen(), "127.0.0.1:9470");  // the default
}

TEST(ConfigTest, ErrorsNameWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string file;
    const char* says;
  };
  const Case cases[] = {
      {{"--config", "f"}, "frobnicate: 1\n", "frobnicate"},
      {{"--config", "f"}, "\nlisten: 7\n", "line 2"},
      {{"--config", "f"}, "log_level: \"loud\"\n", "log_level"},
      {{"--config", "f"}, "listen: \"no-port\"\n", "listen"},
      {{"--config", "f"}, "workers: 5000\n", "workers"},
      {{"--config", "f"}, "limits { max_event_bytes: 100 max_request_bytes: 10 }\n",
       "limits.max_event_bytes"},
      {{"--config", "f"}, "tls { cert_file: \"a.pem\" }\n", "tls.key_file"},
      {{"--config", "f"}, "tls { allowed_client_names: \"x\" }\n", "tls.allowed_client_names"},
      {{"--config", "missing"}, "", "missing"},
      {{"--no_such_flag", "1"}, "", "no_such_flag"},
      {{"--workers", "many"}, "", "workers"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<v1::Config> got = Load(c.args, {{"f", c.file}});
    ASSERT_FALSE(got.ok());
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.says)) << got.status();
  }
}

TEST(ConfigTest, UsageNamesEveryFlag) {
  const std::string usage = FlagsUsage();
  for (const char* flag : {"--config", "--listen", "--metrics_listen", "--data_dir",
                           "--log_level", "--workers", "--grace_seconds", "--trusted_keys"}) {
    EXPECT_TRUE(absl::StrContains(usage, flag)) << flag;
  }
}

}  // namespace
}  // namespace keyverifier::config
