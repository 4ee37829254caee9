// The notary side of the key query API: parsing queries, freshness, the
// countersigned entries and the error bodies.
#include "service/notary/protocol.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_keys.h"
#include "tests/testing/key_fixtures.h"

namespace keyverifier::notary {
namespace {

constexpr int64_t kNow = 1700000000000;
constexpr int64_t kHour = 3600 * 1000;

TEST(ParseBatchQueryTest, ReadsServersKeyIdsAndTheLatestMinimum) {
  absl::StatusOr<std::vector<ServerQuery>> q = ParseBatchQuery(
      R"({"server_keys":{"a.example":{"ed25519:1":{"minimum_valid_until_ts":5},
                                      "ed25519:2":{"minimum_valid_until_ts":9}},
                         "b.example:8448":{},
                         "[::1]:8448":{"ed25519:x":{}}}})",
      {});
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->size(), 3u);
  // Members come sorted by name.
  EXPECT_EQ((*q)[0].server_name.str(), "[::1]:8448");
  EXPECT_EQ((*q)[0].key_ids, std::vector<std::string>{"ed25519:x"});
  EXPECT_FALSE((*q)[0].minimum_valid_until_ts.has_value());
  EXPECT_EQ((*q)[1].server_name.str(), "a.example");
  EXPECT_EQ((*q)[1].key_ids, (std::vector<std::string>{"ed25519:1", "ed25519:2"}));
  EXPECT_EQ((*q)[1].minimum_valid_until_ts, 9);
  EXPECT_EQ((*q)[2].server_name.str(), "b.example:8448");
  EXPECT_TRUE((*q)[2].key_ids.empty());
}

TEST(ParseBatchQueryTest, EmptyServerKeysIsAnEmptyQuery) {
  absl::StatusOr<std::vector<ServerQuery>> q = ParseBatchQuery(R"({"server_keys":{}})", {});
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->empty());
}

TEST(ParseBatchQueryTest, BadBodiesGetTheirErrcodeAndNameWhatWasWrong) {
  QueryLimits limits;
  limits.max_servers = 2;
  limits.max_key_ids = 1;
  struct Case {
    std::string body;
    int status;
    std::string errcode;
    std::string says;
  } cases[] = {
      {"{", 400, "M_NOT_JSON", "request body is not JSON"},
      {"[]", 400, "M_BAD_JSON", "not a JSON object"},
      {"{}", 400, "M_BAD_JSON", "server_keys is missing"},
      {R"({"server_keys":[]})", 400, "M_BAD_JSON", "server_keys is not an object"},
      {R"({"server_keys":{"a.example":[]}})", 400, "M_BAD_JSON", "server_keys[\"a.example\"] is not an object"},
      {R"({"server_keys":{"bad name!":{}}})", 400, "M_INVALID_PARAM", "\"bad name!\" is not a server name"},
      {R"({"server_keys":{"a.example":{"ed25519:1":5}}})", 400, "M_BAD_JSON", "[\"ed25519:1\"] is not an object"},
      {R"({"server_keys":{"a.example":{"ed25519:1":{"minimum_valid_until_ts":"5"}}}})", 400,
       "M_BAD_JSON", "minimum_valid_until_ts is not a non-negative integer"},
      {R"({"server_keys":{"a.example":{"ed25519:1":{"minimum_valid_until_ts":-1}}}})", 400,
       "M_BAD_JSON", "minimum_valid_until_ts is not a non-negative integer"},
      {R"({"server_keys":{"a.example":{"":{}}}})", 400, "M_INVALID_PARAM", "key id must be 1 to 255 bytes"},
      {R"({"server_keys":{"a.example":{},"b.example":{},"c.example":{}}})", 413, "M_TOO_LARGE",
       "names 3 servers; at most 2"},
      {R"({"server_keys":{"a.example":{"ed25519:1":{},"ed25519:2":{}}}})", 413, "M_TOO_LARGE",
       "names 2 key ids; at most 1"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<ServerQuery>> q = ParseBatchQuery(c.body, limits);
    ASSERT_FALSE(q.ok()) << c.body;
    MatrixError e = ErrorOf(q.status());
    EXPECT_EQ(e.http_status, c.status) << c.body;
    EXPECT_EQ(e.errcode, c.errcode) << c.body;
    EXPECT_TRUE(absl::StrContains(e.error, c.says)) << e.error << " / " << c.says;
    // The body is Matrix's error JSON carrying both.
    absl::StatusOr<core::Value> body = core::ParseJson(ErrorBody(e));
    ASSERT_TRUE(body.ok());
    EXPECT_EQ(body->Find("errcode")->string_value(), c.errcode);
    EXPECT_EQ(body->Find("error")->string_value(), e.error);
  }
}

TEST(ParseSingleQueryTest, ServerKeyIdAndMinimum) {
  absl::StatusOr<ServerQuery> q = ParseSingleQuery("a.example:8448", "ed25519:k", "1234");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->server_name.str(), "a.example:8448");
  EXPECT_EQ(q->key_ids, std::vector<std::string>{"ed25519:k"});
  EXPECT_EQ(q->minimum_valid_until_ts, 1234);
  q = ParseSingleQuery("a.example", "", std::nullopt);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->key_ids.empty());
  EXPECT_FALSE(q->minimum_valid_until_ts.has_value());

  absl::StatusOr<ServerQuery> bad = ParseSingleQuery("a example", "", std::nullopt);
  EXPECT_EQ(ErrorOf(bad.status()).errcode, "M_INVALID_PARAM");
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "serverName: \"a example\""));
  bad = ParseSingleQuery("a.example", "", "soon");
  EXPECT_EQ(ErrorOf(bad.status()).errcode, "M_INVALID_PARAM");
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "minimum_valid_until_ts \"soon\""));
  bad = ParseSingleQuery("a.example", "", "-5");
  EXPECT_FALSE(bad.ok());
}

store::StoredResponse Cached(int64_t fetched, int64_t valid_until, std::string source = "a.example") {
  store::StoredResponse r;
  r.server_name = "a.example";
  r.source = std::move(source);
  r.fetched_ts = fetched;
  r.valid_until_ts = valid_until;
  return r;
}

TEST(FreshnessTest, WithoutAMinimumAnAnswerIsFreshUntilHalfItsLifetime) {
  ServerQuery q(*core::ServerName::Parse("a.example"));
  const store::StoredResponse r = Cached(kNow, kNow + 10 * kHour);
  EXPECT_TRUE(Fresh(q, r, kNow));
  EXPECT_TRUE(Fresh(q, r, kNow + 5 * kHour));       // exactly half
  EXPECT_FALSE(Fresh(q, r, kNow + 5 * kHour + 1));  // past it
  EXPECT_EQ(RequiredValidity(q, &r, kNow + 6 * kHour), kNow + 12 * kHour);
  EXPECT_EQ(RequiredValidity(q, nullptr, kNow), 0);
  // An expired answer is never fresh.
  EXPECT_FALSE(Fresh(q, Cached(kNow - 2 * kHour, kNow - kHour), kNow));
}

TEST(FreshnessTest, WithAMinimumTheMinimumDecides) {
  ServerQuery q(*core::ServerName::Parse("a.example"));
  q.minimum_valid_until_ts = kNow + 20 * kHour;
  EXPECT_FALSE(Fresh(q, Cached(kNow, kNow + 10 * kHour), kNow));
  EXPECT_TRUE(Fresh(q, Cached(kNow - 100 * kHour, kNow + 20 * kHour), kNow));
  EXPECT_EQ(RequiredValidity(q, nullptr, kNow), kNow + 20 * kHour);
}

TEST(OriginResponseTest, OnlyTheOriginsOwnLatestAnswer) {
  std::vector<store::StoredResponse> rs = {Cached(1, 10, "notary.example"),
                                           Cached(2, 10, "a.example"),
                                           Cached(5, 10, "a.example"),
                                           Cached(9, 10, "other.example")};
  const store::StoredResponse* r = OriginResponse(rs, "a.example");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->fetched_ts, 5);
  EXPECT_EQ(OriginResponse({Cached(1, 10, "notary.example")}, "a.example"), nullptr);
}

TEST(CountersignTest, TheEntryCarriesTheOriginsAndTheNotarysValidSignatures) {
  const std::string origin =
      testing::KeyResponseJson({"a.example", {{"ed25519:k", 'k'}}, kNow + kHour});
  absl::StatusOr<std::string> entry =
      Countersign(origin, "notary.example", "ed25519:n", testing::TestKey('n'));
  ASSERT_TRUE(entry.ok()) << entry.status();
  // What a pinned-notary client (ours) makes of it: both signatures check.
  absl::StatusOr<std::vector<absl::StatusOr<core::ServerKeys>>> parsed = core::ParseNotaryResponse(
      QueryResponseBody({*entry}), testing::Pinned("notary.example", "ed25519:n", 'n'));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 1u);
  ASSERT_TRUE((*parsed)[0].ok()) << (*parsed)[0].status();
  EXPECT_EQ((*parsed)[0]->server_name, "a.example");
  EXPECT_EQ((*parsed)[0]->valid_until_ts, kNow + kHour);
  // Another notary key does not pass for it.
  parsed = core::ParseNotaryResponse(QueryResponseBody({*entry}),
                                     testing::Pinned("notary.example", "ed25519:n", 'x'));
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE((*parsed)[0].ok());
}

TEST(OwnKeyResponseTest, IsAValidSelfSignedKeyResponse) {
  const std::string own = OwnKeyResponse("notary.example", "ed25519:n", testing::TestKey('n'),
                                         kNow + 24 * kHour);
  core::ServerKeyExpectations expect;
  expect.server_name = "notary.example";
  absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(own, expect);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->verify_keys.size(), 1u);
  EXPECT_EQ(keys->verify_keys[0].key_id, "ed25519:n");
  EXPECT_EQ(keys->verify_keys[0].public_key, testing::TestKey('n').public_key());
  EXPECT_EQ(keys->valid_until_ts, kNow + 24 * kHour);
}

}  // namespace
}  // namespace keyverifier::notary
