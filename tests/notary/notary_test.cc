// Notary over the real FetchingKeyRing (memory store, a scripted origin):
// what it serves, when it asks the origin again, and its HTTP routes.
#include "service/notary/notary.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_keys.h"
#include "service/fetch/key_sources.h"
#include "service/keyring/fetching_keyring.h"
#include "service/store/memory_key_store.h"
#include "tests/fakes/fake_async.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/testing/key_fixtures.h"
#include "tests/testing/server_name.h"

namespace keyverifier::notary {
namespace {

constexpr int64_t kNowMs = 1700000000000;
constexpr int64_t kHour = 3600 * 1000;

core::ServerKeys Keys(const std::string& server, int64_t until, char tag = 'a') {
  return *core::ParseServerKeys(testing::KeyResponseJson({server, {{"ed25519:a", tag}}, until}));
}

class Outcomes : public observe::Observer {
 public:
  void OnNotaryServed(absl::string_view outcome) override {
    absl::MutexLock lock(&mu_);
    served.push_back(std::string(outcome));
  }
  void OnNotaryRequest(absl::string_view endpoint, int status) override {
    absl::MutexLock lock(&mu_);
    requests.push_back(absl::StrCat(endpoint, " ", status));
  }
  std::vector<std::string> TakeServed() {
    absl::MutexLock lock(&mu_);
    return std::exchange(served, {});
  }
  absl::Mutex mu_;
  std::vector<std::string> served;
  std::vector<std::string> requests;
};

class NotaryTest : public ::testing::Test {
 protected:
  NotaryTest() {
    store_ = *store::MemoryKeyStore::Create();
    fetch::KeySources::Options direct_only;
    direct_only.order = fetch::KeySources::Order::kDirectOnly;
    sources_ = *fetch::KeySources::Create(&origin_, {}, direct_only, clock_, observer_);
    ring_ = std::make_unique<keyring::FetchingKeyRing>(*store_, sources_.get(), executor_,
                                                       scheduler_, clock_, observer_,
                                                       keyring::FetchingKeyRing::Options());
    Notary::Options o;
    o.server_name = "notary.test";
    o.serve_own_keys = true;
    o.limits.max_servers = 3;
    notary_ = std::make_unique<Notary>(
        *ring_, clock_, observer_,
        core::NamedSigningKey{"ed25519:n", testing::TestKey('n')}, o);
  }

  // The entries of an answer, checked as a client pinning this notary
  // checks them (origin self-signatures and the notary's signature).
  std::vector<core::ServerKeys> Entries(const std::string& body) {
    absl::StatusOr<std::vector<absl::StatusOr<core::ServerKeys>>> parsed =
        core::ParseNotaryResponse(body, testing::Pinned("notary.test", "ed25519:n", 'n'));
    EXPECT_TRUE(parsed.ok()) << parsed.status() << body;
    std::vector<core::ServerKeys> out;
    if (!parsed.ok()) return out;
    for (auto& e : *parsed) {
      EXPECT_TRUE(e.ok()) << e.status();
      if (e.ok()) out.push_back(*std::move(e));
    }
    return out;
  }

  std::string Query(std::vector<ServerQuery> queries) {
    std::optional<absl::StatusOr<std::string>> got;
    notary_->Query(std::move(queries), [&](absl::StatusOr<std::string> r) { got.emplace(std::move(r)); });
    EXPECT_TRUE(got.has_value());
    EXPECT_TRUE(got->ok()) << got->status();
    return got->ok() ? **got : "";
  }
  static ServerQuery Q(const std::string& server, std::optional<int64_t> minimum = std::nullopt) {
    ServerQuery q(testing::Name(server));
    q.minimum_valid_until_ts = minimum;
    return q;
  }

  HttpResponse Http(const std::string& method, const std::string& path, const std::string& query = "",
                    const std::string& body = "") {
    std::optional<HttpResponse> got;
    notary_->Handle(HttpRequest{method, path, query, body, "127.0.0.1"},
                    [&](HttpResponse r) { got = std::move(r); });
    EXPECT_TRUE(got.has_value());
    return got.value_or(HttpResponse{0, ""});
  }

  testing::FakeClock clock_{absl::FromUnixMillis(kNowMs)};
  testing::InlineExecutor executor_;
  testing::ManualScheduler scheduler_;
  Outcomes observer_;
  testing::ScriptedFetcher origin_{"origin"};
  std::unique_ptr<store::KeyStore> store_;
  std::unique_ptr<fetch::KeySources> sources_;
  std::unique_ptr<keyring::FetchingKeyRing> ring_;
  std::unique_ptr<Notary> notary_;
};

TEST_F(NotaryTest, ColdServerIsFetchedOnceAndServedCountersigned) {
  origin_.answer_ = Keys("a.test", kNowMs + 10 * kHour);
  std::vector<core::ServerKeys> got = Entries(Query({Q("a.test")}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].server_name, "a.test");
  EXPECT_EQ(got[0].valid_until_ts, kNowMs + 10 * kHour);
  EXPECT_EQ(origin_.calls(), 1);
  EXPECT_EQ(observer_.TakeServed(), std::vector<std::string>{"fetched"});

  // Within half its lifetime: served from the cache.
  clock_.Advance(absl::Hours(4));
  got = Entries(Query({Q("a.test")}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(origin_.calls(), 1);
  EXPECT_EQ(observer_.TakeServed(), std::vector<std::string>{"cached"});
}

TEST_F(NotaryTest, PastHalfItsLifetimeTheOriginIsAskedAgain) {
  origin_.answer_ = Keys("a.test", kNowMs + 10 * kHour);
  Query({Q("a.test")});
  clock_.Advance(absl::Hours(6));
  origin_.answer_ = Keys("a.test", kNowMs + 30 * kHour);
  std::vector<core::ServerKeys> got = Entries(Query({Q("a.test")}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].valid_until_ts, kNowMs + 30 * kHour);
  EXPECT_EQ(origin_.calls(), 2);
  observer_.TakeServed();
}

TEST_F(NotaryTest, WhenTheOriginIsDownTheLastAnswerIsServed) {
  origin_.answer_ = Keys("a.test", kNowMs + 10 * kHour);
  Query({Q("a.test")});
  observer_.TakeServed();
  clock_.Advance(absl::Hours(11));  // expired, even
  origin_.answer_ = absl::UnavailableError("connection refused");
  std::vector<core::ServerKeys> got = Entries(Query({Q("a.test")}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].valid_until_ts, kNowMs + 10 * kHour);
  EXPECT_EQ(origin_.calls(), 2);
  EXPECT_EQ(observer_.TakeServed(), std::vector<std::string>{"stale"});
}

TEST_F(NotaryTest, AMinimumTheCacheDoesNotReachMakesAFetch) {
  origin_.answer_ = Keys("a.test", kNowMs + 10 * kHour);
  Query({Q("a.test")});
  origin_.answer_ = Keys("a.test", kNowMs + 40 * kHour);
  std::vector<core::ServerKeys> got = Entries(Query({Q("a.test", kNowMs + 20 * kHour)}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].valid_until_ts, kNowMs + 40 * kHour);
  EXPECT_EQ(origin_.calls(), 2);
  // A minimum the cache reaches: no fetch.
  Query({Q("a.test", kNowMs + 30 * kHour)});
  EXPECT_EQ(origin_.calls(), 2);
}

TEST_F(NotaryTest, UnreachableServersWithNothingCachedAreLeftOut) {
  origin_.answer_ = Keys("a.test", kNowMs + 10 * kHour);
  origin_.SetFor("dead.test", absl::UnavailableError("timed out"));
  std::vector<core::ServerKeys> got = Entries(Query({Q("a.test"), Q("dead.test")}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].server_name, "a.test");
  std::vector<std::string> served = observer_.TakeServed();
  std::sort(served.begin(), served.end());
  EXPECT_EQ(served, (std::vector<std::string>{"fetched", "missing"}));
}

TEST_F(NotaryTest, KeysLearnedOnlyThroughOtherNotariesAreNeverPassedOn) {
  // The store (shared with the service's keyring) knows b.test only from a
  // notary; the origin cannot be reached.
  const core::ServerKeys via_notary = Keys("b.test", kNowMs + 10 * kHour, 'b');
  ASSERT_TRUE(store_->StoreResponse(via_notary, "other-notary.test", kNowMs).ok());
  origin_.answer_ = absl::UnavailableError("connection refused");
  EXPECT_TRUE(Entries(Query({Q("b.test")})).empty());
  EXPECT_EQ(origin_.calls(), 1);  // it tried the origin
  // Once the origin answers, its own response is served.
  clock_.Advance(absl::Hours(2));  // past the failure backoff
  origin_.answer_ = Keys("b.test", kNowMs + 10 * kHour, 'b');
  std::vector<core::ServerKeys> got = Entries(Query({Q("b.test")}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].server_name, "b.test");
}

TEST_F(NotaryTest, ItsOwnNameIsAnsweredWithItsOwnKeysRenewedPastHalfTheirLifetime) {
  std::vector<core::ServerKeys> got = Entries(Query({Q("notary.test")}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].verify_keys[0].public_key, testing::TestKey('n').public_key());
  EXPECT_EQ(got[0].valid_until_ts, kNowMs + 24 * kHour);
  EXPECT_EQ(origin_.calls(), 0);
  clock_.Advance(absl::Hours(11));
  EXPECT_TRUE(absl::StrContains(notary_->OwnKeys(), absl::StrCat(kNowMs + 24 * kHour)));
  clock_.Advance(absl::Hours(2));
  EXPECT_TRUE(absl::StrContains(notary_->OwnKeys(), absl::StrCat(kNowMs + 37 * kHour)));
}

TEST_F(NotaryTest, HttpRoutes) {
  origin_.answer_ = Keys("a.test:8448", kNowMs + 10 * kHour);
  // GET with a percent-encoded name, a key id and a minimum.
  HttpResponse r = Http("GET", "/_matrix/key/v2/query/a.test%3A8448/ed25519%3Aa",
                        absl::StrCat("minimum_valid_until_ts=", kNowMs));
  EXPECT_EQ(r.status, 200) << r.body;
  std::vector<core::ServerKeys> got = Entries(r.body);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].server_name, "a.test:8448");
  EXPECT_EQ(origin_.last_request().key_ids, std::vector<std::string>{"ed25519:a"});

  r = Http("POST", "/_matrix/key/v2/query", "",
           R"({"server_keys":{"a.test:8448":{"ed25519:a":{"minimum_valid_until_ts":0}}}})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Entries(r.body).size(), 1u);

  r = Http("POST", "/_matrix/key/v2/query", "", R"({"server_keys":{}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"server_keys":[]})");

  r = Http("GET", "/_matrix/key/v2/server");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(core::ParseServerKeys(r.body).ok()) << r.body;

  struct Bad {
    std::string method, path, query, body;
    int status;
    std::string errcode;
  } bad[] = {
      {"POST", "/_matrix/key/v2/query", "", "nope", 400, "M_NOT_JSON"},
      {"POST", "/_matrix/key/v2/query", "", R"({"server_keys":{"a":{},"b":{},"c":{},"d":{}}})", 413,
       "M_TOO_LARGE"},
      {"GET", "/_matrix/key/v2/query", "", "", 405, "M_UNRECOGNIZED"},
      {"POST", "/_matrix/key/v2/query/a.test", "", "", 405, "M_UNRECOGNIZED"},
      {"GET", "/_matrix/key/v2/query/bad%20name", "", "", 400, "M_INVALID_PARAM"},
      {"GET", "/_matrix/key/v2/query/a.test", "minimum_valid_until_ts=x", "", 400, "M_INVALID_PARAM"},
      {"GET", "/_matrix/key/v2/query/a/b/c", "", "", 404, "M_UNRECOGNIZED"},
      {"GET", "/_matrix/federation/v1/version", "", "", 404, "M_UNRECOGNIZED"},
  };
  for (const Bad& b : bad) {
    HttpResponse e = Http(b.method, b.path, b.query, b.body);
    EXPECT_EQ(e.status, b.status) << b.method << " " << b.path << ": " << e.body;
    absl::StatusOr<core::Value> body = core::ParseJson(e.body);
    ASSERT_TRUE(body.ok()) << e.body;
    ASSERT_NE(body->Find("errcode"), nullptr);
    EXPECT_EQ(body->Find("errcode")->string_value(), b.errcode) << b.path;
    EXPECT_FALSE(body->Find("error")->string_value().empty());
  }
}

}  // namespace
}  // namespace keyverifier::notary
