// DirectFetcher and NotaryFetcher over scripted DNS and HTTP.
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "service/fetch/direct_fetcher.h"
#include "service/fetch/notary_fetcher.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http.h"
#include "tests/fakes/fake_net.h"
#include "tests/testing/key_fixtures.h"

namespace keyverifier::fetch {
namespace {

using testing::FakeClock;
using testing::FakeHttpClient;
using testing::FakeResolver;
using testing::FakeWellKnownFetcher;
using testing::KeyResponse;
using testing::KeyResponseJson;
using testing::NotaryAnswer;
using testing::NotarySigned;
using testing::Pinned;

constexpr int64_t kUntil = 1800000000000;

class FetchersTest : public ::testing::Test {
 protected:
  FetchersTest()
      : clock_(absl::FromUnixSeconds(1700000000)),
        filter_(net::IpFilter::AllowAll()),
        discovery_(resolver_, well_known_, filter_, clock_, {}) {
    resolver_.AddHost("origin.test", {"192.0.2.10", "192.0.2.11"});
    resolver_.AddHost("notary.test", {"192.0.2.20"});
  }
  static absl::Time Soon() { return absl::InfiniteFuture(); }

  FakeClock clock_;
  FakeResolver resolver_;
  FakeWellKnownFetcher well_known_;
  net::IpFilter filter_;
  net::ServerDiscovery discovery_;
  FakeHttpClient http_;
};

TEST_F(FetchersTest, DirectFetchValidatesAndKeepsTheRawResponse) {
  std::string body = KeyResponseJson({"origin.test:8448", {{"ed25519:a", 'a'}}, kUntil});
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 200, body);
  DirectFetcher f(discovery_, http_);
  absl::StatusOr<core::ServerKeys> keys = f.Fetch({"origin.test:8448"}, Soon());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->verify_keys.size(), 1u);
  EXPECT_EQ(keys->valid_until_ts, kUntil);
  EXPECT_EQ(keys->raw_json, body);
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].tls_name, "origin.test");
  EXPECT_EQ(http_.requests()[0].connect_to.ToString(), "192.0.2.10:8448");
}

TEST_F(FetchersTest, DirectFetchTriesTheNextAddress) {
  http_.FailAddress("192.0.2.10:8448", absl::UnavailableError("connection refused"));
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 200,
            KeyResponseJson({"origin.test:8448", {{"ed25519:a", 'a'}}, kUntil}));
  DirectFetcher f(discovery_, http_);
  absl::StatusOr<core::ServerKeys> keys = f.Fetch({"origin.test:8448"}, Soon());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(http_.requests().size(), 2u);
}

TEST_F(FetchersTest, DirectFetchRefusesAnotherServersKeys) {
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 200,
            KeyResponseJson({"evil.test", {{"ed25519:a", 'a'}}, kUntil}));
  DirectFetcher f(discovery_, http_);
  absl::StatusOr<core::ServerKeys> keys = f.Fetch({"origin.test:8448"}, Soon());
  ASSERT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(keys.status().message(), "evil.test")) << keys.status();
}

TEST_F(FetchersTest, DirectFetchRefusesABadSelfSignature) {
  core::Value v = KeyResponse({"origin.test:8448", {{"ed25519:a", 'a'}}, kUntil});
  v.Set("valid_until_ts", core::Value::Integer(kUntil + 1));  // after signing
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 200, core::ToJson(v));
  DirectFetcher f(discovery_, http_);
  absl::StatusOr<core::ServerKeys> keys = f.Fetch({"origin.test:8448"}, Soon());
  ASSERT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(keys.status().message(), "ed25519:a")) << keys.status();
}

TEST_F(FetchersTest, DirectFetchReportsHttpErrors) {
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 500, "oops");
  DirectFetcher f(discovery_, http_);
  absl::StatusOr<core::ServerKeys> keys = f.Fetch({"origin.test:8448"}, Soon());
  ASSERT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(keys.status().message(), "HTTP 500")) << keys.status();
}

TEST_F(FetchersTest, NotaryGetFormChecksBothSignatures) {
  core::Value entry = NotarySigned(KeyResponse({"origin.test", {{"ed25519:a", 'a'}}, kUntil}),
                                   "notary.test:8448", "ed25519:n", 'n');
  http_.Set("GET", "notary.test:8448",
            "/_matrix/key/v2/query/origin.test?minimum_valid_until_ts=1700000000000", 200,
            NotaryAnswer({entry}));
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), discovery_, http_);
  absl::StatusOr<core::ServerKeys> keys =
      f.Fetch({"origin.test", {}, 1700000000000}, Soon());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->notaries, std::vector<std::string>{"notary.test:8448"});
  EXPECT_EQ(f.source(), "notary.test:8448");
}

TEST_F(FetchersTest, NotarySignedByAnUnpinnedKeyIsRefused) {
  core::Value entry = NotarySigned(KeyResponse({"origin.test", {{"ed25519:a", 'a'}}, kUntil}),
                                   "notary.test:8448", "ed25519:n", 'x');
  http_.Set("GET", "notary.test:8448", "/_matrix/key/v2/query/origin.test", 200,
            NotaryAnswer({entry}));
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), discovery_, http_);
  absl::StatusOr<core::ServerKeys> keys = f.Fetch({"origin.test"}, Soon());
  ASSERT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(keys.status().message(), "no valid keys for origin.test"))
      << keys.status();
}

TEST_F(FetchersTest, NotaryBatchKeepsGoodEntriesBesideBadOnes) {
  core::Value good = NotarySigned(KeyResponse({"a.test", {{"ed25519:a", 'a'}}, kUntil}),
                                  "notary.test:8448", "ed25519:n", 'n');
  core::Value older = NotarySigned(KeyResponse({"a.test", {{"ed25519:a", 'a'}}, kUntil - 5}),
                                   "notary.test:8448", "ed25519:n", 'n');
  core::Value forged = KeyResponse({"b.test", {{"ed25519:b", 'b'}}, kUntil});
  forged = NotarySigned(std::move(forged), "notary.test:8448", "ed25519:n", 'n');
  forged.Set("valid_until_ts", core::Value::Integer(kUntil + 99));  // breaks both signatures
  http_.Set("POST", "notary.test:8448", "/_matrix/key/v2/query", 200,
            NotaryAnswer({older, forged, good}));
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), discovery_, http_);
  auto answers = f.FetchMany({{"a.test", {"ed25519:a"}, 1700000000000}, {"b.test"}, {"c.test"}},
                             Soon());
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_TRUE(answers->at("a.test").ok()) << answers->at("a.test").status();
  EXPECT_EQ(answers->at("a.test")->valid_until_ts, kUntil);  // the longest valid
  EXPECT_FALSE(answers->at("b.test").ok());
  EXPECT_TRUE(absl::StrContains(answers->at("b.test").status().message(), "rejected"));
  EXPECT_FALSE(answers->at("c.test").ok());
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].body,
            R"({"server_keys":{"a.test":{"ed25519:a":{"minimum_valid_until_ts":1700000000000}},)"
            R"("b.test":{},"c.test":{}}})");
}

TEST_F(FetchersTest, NotaryPathEscapesTheServerName) {
  resolver_.AddHost("notary.test", {"192.0.2.20"});
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), discovery_, http_);
  (void)f.Fetch({"[2001:db8::1]:8448"}, Soon());
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].path, "/_matrix/key/v2/query/%5B2001%3Adb8%3A%3A1%5D%3A8448");
}

}  // namespace
}  // namespace keyverifier::fetch
