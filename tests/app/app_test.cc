// App: the components built from the settings, as main.cc builds them,
// without a gRPC server: on the memory store and on SQLite in a temporary
// directory; configurations it refuses, each naming the key that is wrong;
// Describe(); the notary built when configured, the diagnoser going
// through the service's own outbound path. No network traffic: fetching
// targets only loopback, which the outbound filter refuses before any
// connection.
#include "service/app/app.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/clock/clock.h"
#include "service/config/config.h"
#include "service/core/base64.h"
#include "service/core/json.h"
#include "service/core/signing_key_file.h"
#include "service/observe/log.h"
#include "service/observe/observer.h"
#include "tests/testing/key_fixtures.h"

namespace keyverifier::app {
namespace {

constexpr char kKeyId[] = "ed25519:k1";

class AppTest : public ::testing::Test {
 protected:
  AppTest() : log_(observe::LogLevel::kError, std::cerr, clock_) {}

  // A config that reaches nothing: DNS at a closed loopback port (the
  // outbound filter refuses loopback anyway), the refresher off.
  v1::Config Base() const {
    v1::Config c;
    c.mutable_store()->set_kind(v1::Config::memory);
    c.mutable_dns()->set_servers("127.0.0.1:9");
    return c;
  }

  absl::StatusOr<std::unique_ptr<App>> Make(const v1::Config& c) {
    return Make(config::Effective(c));
  }
  absl::StatusOr<std::unique_ptr<App>> Make(const config::Settings& s) {
    return App::Create(
        s,
        [this](const std::string& path) -> absl::StatusOr<std::string> {
          auto it = files_.find(path);
          if (it == files_.end()) return absl::NotFoundError(absl::StrCat("cannot open ", path));
          return it->second;
        },
        clock_, observe::NoopObserver(), log_);
  }

  // Create refuses `c` with a message that starts with "config: KEY: ".
  void ExpectRefused(const v1::Config& c, const std::string& key, const std::string& says = "") {
    absl::StatusOr<std::unique_ptr<App>> app = Make(c);
    ASSERT_FALSE(app.ok()) << "accepted; expected an error naming " << key;
    EXPECT_TRUE(absl::StartsWith(app.status().message(), absl::StrCat("config: ", key, ": ")))
        << app.status();
    EXPECT_TRUE(absl::StrContains(app.status().message(), says)) << app.status();
  }

  std::map<std::string, std::string> files_;
  SystemClock clock_;
  observe::Logger log_;
};

TEST_F(AppTest, MemoryStoreAnswersFromTheTrustedKeysFile) {
  const int64_t until = absl::ToUnixMillis(absl::Now() + absl::Hours(24));
  files_["keys.json"] =
      absl::StrCat("[", testing::KeyResponseJson({"pinned.example", {{kKeyId, 'p'}}, until}), "]");
  v1::Config c = Base();
  c.set_trusted_keys_file("keys.json");
  absl::StatusOr<std::unique_ptr<App>> app = Make(c);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ((*app)->Describe(),
            "store memory; fetching on (0 notaries); refresher on; notary off");
  EXPECT_EQ((*app)->notary(), nullptr);

  v1::VerifyServerKeysRequest request;
  request.set_server_name("pinned.example");
  absl::StatusOr<v1::VerifyServerKeysResponse> keys = (*app)->verifier().Wait(
      &api::Verifier::VerifyServerKeys, request, absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->verify_keys_size(), 1);
  EXPECT_EQ(keys->verify_keys(0).key_id(), kKeyId);
  const core::Ed25519PublicKey want = testing::TestKey('p').public_key();
  EXPECT_EQ(keys->verify_keys(0).public_key(),
            std::string(reinterpret_cast<const char*>(want.data()), want.size()));
  (*app)->Start();
  (*app)->Stop();
}

TEST_F(AppTest, SqliteStoreLivesInDataDir) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/app-test-XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  v1::Config c = Base();
  c.mutable_store()->clear_kind();  // the default: sqlite
  c.set_data_dir(dir);
  c.mutable_fetch()->set_disabled(true);
  for (int round = 0; round < 2; ++round) {  // a second App opens the same file
    absl::StatusOr<std::unique_ptr<App>> app = Make(c);
    ASSERT_TRUE(app.ok()) << app.status();
    EXPECT_EQ((*app)->Describe(), "store sqlite; fetching off; refresher off; notary off");
    struct stat st;
    EXPECT_EQ(stat(absl::StrCat(dir, "/keys.sqlite3").c_str(), &st), 0);
  }
}

TEST_F(AppTest, DescribeSaysWhatWasBuilt) {
  v1::Config c = Base();
  for (const char* name : {"n1.example", "n2.example"}) {
    v1::Config::Fetch::Notary* n = c.mutable_fetch()->add_notaries();
    n->set_server_name(name);
    (*n->mutable_verify_keys())[kKeyId] =
        core::EncodeBase64Unpadded(absl::string_view(
            reinterpret_cast<const char*>(testing::TestKey('n').public_key().data()), 32));
  }
  c.mutable_refresher()->set_disabled(true);
  absl::StatusOr<std::unique_ptr<App>> app = Make(c);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ((*app)->Describe(),
            "store memory; fetching on (2 notaries); refresher off; notary off");
}

TEST_F(AppTest, NotaryIsBuiltWhenConfigured) {
  files_["notary.key"] = core::SigningKeyFileLine("n1", std::string(32, 'n'));
  v1::Config c = Base();
  c.set_notary_listen("127.0.0.1:0");
  c.mutable_notary()->set_server_name("notary.example");
  c.mutable_notary()->set_signing_key_file("notary.key");
  absl::StatusOr<std::unique_ptr<App>> app = Make(c);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_TRUE(absl::EndsWith((*app)->Describe(), "; notary on")) << (*app)->Describe();
  ASSERT_NE((*app)->notary(), nullptr);
  // Its own key response: signed under the configured name with the key
  // from the file.
  absl::StatusOr<core::Value> own = core::ParseJson((*app)->notary()->OwnKeys());
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->Find("server_name")->string_value(), "notary.example");
  const core::Value* key = own->Find("verify_keys")->Find("ed25519:n1");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->Find("key")->string_value(),
            core::EncodeBase64Unpadded(absl::string_view(
                reinterpret_cast<const char*>(testing::TestKey('n').public_key().data()), 32)));
}

TEST_F(AppTest, DiagnoserGoesThroughTheOutboundFilter) {
  absl::StatusOr<std::unique_ptr<App>> app = Make(Base());
  ASSERT_TRUE(app.ok()) << app.status();
  absl::StatusOr<v1::DiagnoseServerResponse> report =
      (*app)->diagnoser().DiagnoseAndWait("127.0.0.1:8448", absl::Now() + absl::Seconds(20));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->server_name(), "127.0.0.1:8448");
  EXPECT_FALSE(report->federation_ok());
  EXPECT_TRUE(absl::StrContains(report->DebugString(), "127.0.0.1 is in denied network"))
      << report->DebugString();
}

TEST_F(AppTest, RefusesConfigsNamingTheKey) {
  const std::string pk = core::EncodeBase64Unpadded(absl::string_view(
      reinterpret_cast<const char*>(testing::TestKey('n').public_key().data()), 32));
  {
    v1::Config c = Base();
    c.set_notary_listen("127.0.0.1:0");
    c.mutable_notary()->set_server_name("notary.example");
    ExpectRefused(c, "notary.signing_key_file", "required with notary_listen");
  }
  {
    v1::Config c = Base();
    c.set_notary_listen("127.0.0.1:0");
    c.mutable_notary()->set_server_name("notary.example");
    c.mutable_notary()->set_signing_key_file("absent.key");
    ExpectRefused(c, "notary.signing_key_file", "cannot open absent.key");
  }
  {
    files_["bad.key"] = "ed25519 n1 !!!";
    v1::Config c = Base();
    c.set_notary_listen("127.0.0.1:0");
    c.mutable_notary()->set_server_name("notary.example");
    c.mutable_notary()->set_signing_key_file("bad.key");
    ExpectRefused(c, "notary.signing_key_file", "base64");
  }
  {
    v1::Config c = Base();
    c.mutable_store()->set_kind(v1::Config::postgres);
    c.mutable_store()->set_postgres("host=127.0.0.1 port=9");
    c.mutable_store()->set_lease_ms(30000);
    c.mutable_fetch()->set_budget_ms(30000);
    ExpectRefused(c, "store.lease_ms", "not more than fetch.budget_ms (30000)");
  }
  {
    v1::Config c = Base();
    c.mutable_store()->set_kind(v1::Config::postgres);
    c.mutable_fetch()->set_budget_ms(50000);  // more than the default lease
    ExpectRefused(c, "store.lease_ms", "40000 is not more than fetch.budget_ms (50000)");
  }
  {
    v1::Config c = Base();
    c.mutable_store()->set_kind(v1::Config::postgres);
    ExpectRefused(c, "store.postgres", "connection string");
  }
  {
    v1::Config c = Base();
    v1::Config::Fetch::Notary* n = c.mutable_fetch()->add_notaries();
    n->set_server_name("n.example");
    (*n->mutable_verify_keys())["curve25519:x"] = pk;
    ExpectRefused(c, "fetch.notaries[0].verify_keys[curve25519:x]", "not an ed25519 key id");
  }
  {
    v1::Config c = Base();
    v1::Config::Fetch::Notary* n = c.mutable_fetch()->add_notaries();
    n->set_server_name("n.example");
    (*n->mutable_verify_keys())[kKeyId] = "not base64!";
    ExpectRefused(c, absl::StrCat("fetch.notaries[0].verify_keys[", kKeyId, "]"));
  }
  {
    v1::Config c = Base();
    c.mutable_fetch()->add_notaries()->set_server_name("n.example");
    ExpectRefused(c, "fetch.notaries[0].verify_keys", "at least one pinned key");
  }
  {
    v1::Config c = Base();
    (*c.mutable_fetch()->add_notaries()->mutable_verify_keys())[kKeyId] = pk;
    ExpectRefused(c, "fetch.notaries[0].server_name");
  }
  {
    v1::Config c = Base();
    for (const char* name : {"n.example", "N.example"}) {
      v1::Config::Fetch::Notary* n = c.mutable_fetch()->add_notaries();
      n->set_server_name(name);
      (*n->mutable_verify_keys())[kKeyId] = pk;
    }
    ExpectRefused(c, "fetch.notaries[1].server_name", "listed more than once");
  }
  {
    v1::Config c = Base();
    c.mutable_outbound()->add_denied("10.0.0.0/33");
    ExpectRefused(c, "outbound", "10.0.0.0/33");
  }
  {
    v1::Config c = Base();
    c.mutable_outbound()->add_allowed("not-a-network");
    ExpectRefused(c, "outbound", "not-a-network");
  }
  {
    v1::Config c = Base();
    c.set_trusted_keys_file("absent.json");
    ExpectRefused(c, "trusted_keys_file", "cannot open absent.json");
  }
  {
    files_["garbage.json"] = "{not json";
    v1::Config c = Base();
    c.set_trusted_keys_file("garbage.json");
    ExpectRefused(c, "trusted_keys_file");
  }
  {
    v1::Config c = Base();
    c.mutable_federation_tls()->set_ca_mode(v1::Config::replace);
    ExpectRefused(c, "federation_tls");
  }
  {
    v1::Config c = Base();
    c.mutable_federation_tls()->set_fingerprint_fallback_until("next spring");
    ExpectRefused(c, "federation_tls.fingerprint_fallback_until", "not an RFC 3339 time");
  }
  {
    v1::Config c = Base();
    c.add_banned_keys()->set_key_id(kKeyId);  // a key id needs its server
    ExpectRefused(c, "banned_keys");
  }
}

// Settings made in code rather than by Effective() are checked too: an
// enum value no file can give is refused, not read as something else.
TEST_F(AppTest, RefusesSettingsNoFileCanGive) {
  config::Settings s = config::Effective(Base());
  s.store.kind = v1::Config::STORE_KIND_UNSPECIFIED;
  absl::StatusOr<std::unique_ptr<App>> app = Make(s);
  ASSERT_FALSE(app.ok());
  EXPECT_TRUE(absl::StartsWith(app.status().message(), "config: store.kind: ")) << app.status();

  s = config::Effective(Base());
  s.fetch.order = v1::Config::FETCH_ORDER_UNSPECIFIED;
  app = Make(s);
  ASSERT_FALSE(app.ok());
  EXPECT_TRUE(absl::StartsWith(app.status().message(), "config: fetch.order: ")) << app.status();

  s = config::Effective(Base());
  s.fetch.well_known_port = 0;
  app = Make(s);
  ASSERT_FALSE(app.ok());
  EXPECT_TRUE(absl::StartsWith(app.status().message(), "config: fetch.well_known_port: "))
      << app.status();
}

}  // namespace
}  // namespace keyverifier::app
