// DirectFetcher and NotaryFetcher over scripted DNS and HTTP (the fakes
// answer inline; the blocking helpers wait for the callbacks).
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/async/worker_pool.h"
#include "service/fetch/direct_fetcher.h"
#include "service/fetch/notary_fetcher.h"
#include "service/net/federation_client.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http.h"
#include "tests/fakes/fake_net.h"
#include "tests/testing/key_fixtures.h"
#include "tests/testing/server_name.h"

namespace keyverifier::fetch {
namespace {

using ::keyverifier::testing::Name;

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
        discovery_(resolver_, well_known_, filter_, clock_, {}),
        client_(discovery_, http_) {
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
  net::FederationClient client_;
};

TEST_F(FetchersTest, DirectFetchValidatesAndKeepsTheRawResponse) {
  std::string body = KeyResponseJson({"origin.test:8448", {{"ed25519:a", 'a'}}, kUntil});
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 200, body);
  DirectFetcher f(client_);
  absl::StatusOr<core::ServerKeys> keys = f.FetchAndWait({Name("origin.test:8448")}, Soon());
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
  DirectFetcher f(client_);
  absl::StatusOr<core::ServerKeys> keys = f.FetchAndWait({Name("origin.test:8448")}, Soon());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(http_.requests().size(), 2u);
}

TEST_F(FetchersTest, DirectFetchRefusesAnotherServersKeys) {
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 200,
            KeyResponseJson({"evil.test", {{"ed25519:a", 'a'}}, kUntil}));
  DirectFetcher f(client_);
  absl::StatusOr<core::ServerKeys> keys = f.FetchAndWait({Name("origin.test:8448")}, Soon());
  ASSERT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(keys.status().message(), "evil.test")) << keys.status();
}

TEST_F(FetchersTest, DirectFetchRefusesABadSelfSignature) {
  core::Value v = KeyResponse({"origin.test:8448", {{"ed25519:a", 'a'}}, kUntil});
  v.Set("valid_until_ts", core::Value::Integer(kUntil + 1));  // after signing
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 200, core::ToJson(v));
  DirectFetcher f(client_);
  absl::StatusOr<core::ServerKeys> keys = f.FetchAndWait({Name("origin.test:8448")}, Soon());
  ASSERT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(keys.status().message(), "ed25519:a")) << keys.status();
}

TEST_F(FetchersTest, DirectFetchReportsHttpErrors) {
  http_.Set("GET", "origin.test:8448", "/_matrix/key/v2/server", 500, "oops");
  DirectFetcher f(client_);
  absl::StatusOr<core::ServerKeys> keys = f.FetchAndWait({Name("origin.test:8448")}, Soon());
  ASSERT_EQ(keys.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(keys.status().message(), "HTTP 500")) << keys.status();
}

TEST_F(FetchersTest, NotaryGetFormChecksBothSignatures) {
  core::Value entry = NotarySigned(KeyResponse({"origin.test", {{"ed25519:a", 'a'}}, kUntil}),
                                   "notary.test:8448", "ed25519:n", 'n');
  http_.Set("GET", "notary.test:8448",
            "/_matrix/key/v2/query/origin.test?minimum_valid_until_ts=1700000000000", 200,
            NotaryAnswer({entry}));
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), client_);
  absl::StatusOr<core::ServerKeys> keys =
      f.FetchAndWait({Name("origin.test"), {}, 1700000000000}, Soon());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->notaries, std::vector<std::string>{"notary.test:8448"});
  EXPECT_EQ(f.source(), "notary.test:8448");
}

TEST_F(FetchersTest, NotarySignedByAnUnpinnedKeyIsRefused) {
  core::Value entry = NotarySigned(KeyResponse({"origin.test", {{"ed25519:a", 'a'}}, kUntil}),
                                   "notary.test:8448", "ed25519:n", 'x');
  http_.Set("GET", "notary.test:8448", "/_matrix/key/v2/query/origin.test", 200,
            NotaryAnswer({entry}));
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), client_);
  absl::StatusOr<core::ServerKeys> keys = f.FetchAndWait({Name("origin.test")}, Soon());
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
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), client_);
  auto answers = f.FetchManyAndWait(
      {{Name("a.test"), {"ed25519:a"}, 1700000000000}, {Name("b.test")}, {Name("c.test")}}, Soon());
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_TRUE(answers->at(Name("a.test")).ok()) << answers->at(Name("a.test")).status();
  EXPECT_EQ(answers->at(Name("a.test"))->valid_until_ts, kUntil);  // the longest valid
  EXPECT_FALSE(answers->at(Name("b.test")).ok());
  EXPECT_TRUE(absl::StrContains(answers->at(Name("b.test")).status().message(), "rejected"));
  EXPECT_FALSE(answers->at(Name("c.test")).ok());
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].body,
            R"({"server_keys":{"a.test":{"ed25519:a":{"minimum_valid_until_ts":1700000000000}},)"
            R"("b.test":{},"c.test":{}}})");
}

TEST_F(FetchersTest, NotaryPathEscapesTheServerName) {
  resolver_.AddHost("notary.test", {"192.0.2.20"});
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), client_);
  (void)f.FetchAndWait({Name("[2001:db8::1]:8448")}, Soon());
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].path, "/_matrix/key/v2/query/%5B2001%3Adb8%3A%3A1%5D%3A8448");
}

// A notary behind the scripted client that answers each batch POST for
// exactly the servers its body names (the plain fake answers by method, host
// and path alone). A POST naming `failing_server` answers HTTP 500 as a
// whole. Requests are still recorded (and counted) by FakeHttpClient.
class BatchNotaryHttp : public FakeHttpClient {
 public:
  void AddEntry(const std::string& server, core::Value entry) {
    entries_.emplace(server, std::move(entry));
  }
  std::string failing_server;

  void Send(const net::HttpRequest& req, absl::Time deadline,
            async::Callback<net::HttpResponse> done) override {
    if (req.method != "POST") return FakeHttpClient::Send(req, deadline, std::move(done));
    std::vector<core::Value> named;
    bool fail = false;
    for (const auto& [server, entry] : entries_) {
      if (absl::StrContains(req.body, absl::StrCat("\"", server, "\""))) named.push_back(entry);
    }
    if (!failing_server.empty() &&
        absl::StrContains(req.body, absl::StrCat("\"", failing_server, "\""))) {
      fail = true;
    }
    std::string body = testing::NotaryAnswer(named);
    FakeHttpClient::Send(
        req, deadline,
        [fail, body = std::move(body), done = std::move(done)](
            absl::StatusOr<net::HttpResponse> r) mutable {
          if (r.ok()) {
            r->status = fail ? 500 : 200;
            r->body = fail ? "oops" : std::move(body);
          }
          done(std::move(r));
        });
  }

 private:
  std::map<std::string, core::Value> entries_;  // set before any request
};

class NotaryBatchTest : public FetchersTest {
 protected:
  NotaryBatchTest() : batch_client_(discovery_, batch_http_) {
    for (const std::string& s : kServers) {
      batch_http_.AddEntry(s, NotarySigned(KeyResponse({s, {{"ed25519:a", 'a'}}, kUntil}),
                                           "notary.test:8448", "ed25519:n", 'n'));
    }
    // Scripted so that the fake answers the POST at all (the body is
    // replaced per batch).
    batch_http_.Set("POST", "notary.test:8448", "/_matrix/key/v2/query", 200, "");
  }
  std::vector<KeyQuery> All() const {
    std::vector<KeyQuery> out;
    for (const std::string& s : kServers) out.push_back(KeyQuery(Name(s)));
    return out;
  }
  // The servers a POST body names.
  std::set<std::string> Named(const std::string& body) const {
    std::set<std::string> out;
    for (const std::string& s : kServers) {
      if (absl::StrContains(body, absl::StrCat("\"", s, "\""))) out.insert(s);
    }
    return out;
  }

  const std::vector<std::string> kServers = {"s1.test", "s2.test", "s3.test", "s4.test",
                                             "s5.test"};
  BatchNotaryHttp batch_http_;
  net::FederationClient batch_client_;
};

TEST_F(NotaryBatchTest, FetchManySendsOnePostPerBatchNamingEveryServerOnce) {
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), batch_client_,
                  NotaryFetcher::Options{2});
  absl::StatusOr<KeysByServer> answers = f.FetchManyAndWait(All(), Soon());
  ASSERT_TRUE(answers.ok()) << answers.status();
  EXPECT_EQ(answers->size(), 5u);
  for (const std::string& s : kServers) {
    ASSERT_EQ(answers->count(Name(s)), 1u) << s;
    ASSERT_TRUE(answers->at(Name(s)).ok()) << s << ": " << answers->at(Name(s)).status();
    EXPECT_EQ(answers->at(Name(s))->server_name, s);
    EXPECT_EQ(answers->at(Name(s))->valid_until_ts, kUntil);
  }
  std::vector<net::HttpRequest> posts = batch_http_.requests();
  ASSERT_EQ(posts.size(), 3u);  // 2 + 2 + 1
  std::multiset<std::string> named;
  for (const net::HttpRequest& r : posts) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/_matrix/key/v2/query");
    EXPECT_EQ(r.host_header, "notary.test:8448");
    std::set<std::string> in_this = Named(r.body);
    EXPECT_GE(in_this.size(), 1u) << r.body;
    EXPECT_LE(in_this.size(), 2u) << r.body;
    named.insert(in_this.begin(), in_this.end());
  }
  EXPECT_EQ(named, std::multiset<std::string>(kServers.begin(), kServers.end()));
}

TEST_F(NotaryBatchTest, ABatchFailingAsAWholeFailsOnlyItsServers) {
  batch_http_.failing_server = "s3.test";  // the second batch: s3, s4
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), batch_client_,
                  NotaryFetcher::Options{2});
  absl::StatusOr<KeysByServer> answers = f.FetchManyAndWait(All(), Soon());
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_EQ(answers->size(), 5u);
  EXPECT_EQ(batch_http_.requests().size(), 3u);
  // Which servers shared the failing POST.
  std::set<std::string> failed_batch;
  for (const net::HttpRequest& r : batch_http_.requests()) {
    std::set<std::string> in_this = Named(r.body);
    if (in_this.count("s3.test")) failed_batch = in_this;
  }
  ASSERT_EQ(failed_batch.size(), 2u);
  for (const std::string& s : kServers) {
    SCOPED_TRACE(s);
    ASSERT_EQ(answers->count(Name(s)), 1u);
    if (failed_batch.count(s)) {
      EXPECT_EQ(answers->at(Name(s)).status().code(), absl::StatusCode::kUnavailable);
      EXPECT_TRUE(absl::StrContains(answers->at(Name(s)).status().message(), "HTTP 500"))
          << answers->at(Name(s)).status();
    } else {
      ASSERT_TRUE(answers->at(Name(s)).ok()) << answers->at(Name(s)).status();
      EXPECT_EQ(answers->at(Name(s))->server_name, s);
    }
  }
}

TEST_F(NotaryBatchTest, EveryBatchFailingFailsTheWhole) {
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), batch_client_,
                  NotaryFetcher::Options{2});
  resolver_.AddHost("notary.test", {"192.0.2.20"});
  batch_http_.FailAddress("192.0.2.20:8448", absl::UnavailableError("notary refused"));
  absl::StatusOr<KeysByServer> answers = f.FetchManyAndWait(All(), Soon());
  EXPECT_EQ(answers.status().code(), absl::StatusCode::kUnavailable) << answers.status();
  EXPECT_TRUE(absl::StrContains(answers.status().message(), "notary refused"))
      << answers.status();
  EXPECT_EQ(batch_http_.requests().size(), 3u);
}

TEST_F(NotaryBatchTest, FetchManyAnswersThroughTheCallback) {
  NotaryFetcher f(Pinned("notary.test:8448", "ed25519:n", 'n'), batch_client_,
                  NotaryFetcher::Options{2});
  int calls = 0;
  absl::StatusOr<KeysByServer> got;
  f.FetchMany(All(), Soon(), [&](absl::StatusOr<KeysByServer> r) {
    ++calls;
    got = std::move(r);
  });
  // The fakes answer inline: the callback has run, once.
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 5u);
}

// Counts the tasks it hands to a real pool.
class CountingExecutor : public async::Executor {
 public:
  explicit CountingExecutor(async::Executor& inner) : inner_(inner) {}
  bool Post(async::Task task) override {
    ++posted;
    return inner_.Post(std::move(task));
  }
  std::atomic<int> posted{0};

 private:
  async::Executor& inner_;
};

// A 150-server answer is checked in slices on the checker's threads, with
// the same outcome, entry by entry, as checking it on the answer's thread.
TEST_F(FetchersTest, ALargeNotaryAnswerIsCheckedOnTheCheckerAlike) {
  BatchNotaryHttp http;
  std::vector<KeyQuery> queries;
  for (int i = 0; i < 150; ++i) {
    const std::string s = absl::StrCat("s", i, ".test");
    core::Value entry = NotarySigned(KeyResponse({s, {{"ed25519:a", 'a'}}, kUntil}),
                                     "notary.test:8448", "ed25519:n", 'n');
    if (i % 10 == 3) entry.Set("valid_until_ts", core::Value::Integer(kUntil + 1));  // forged
    http.AddEntry(s, std::move(entry));
    queries.push_back(KeyQuery(Name(s)));
  }
  http.Set("POST", "notary.test:8448", "/_matrix/key/v2/query", 200, "");
  net::FederationClient client(discovery_, http);
  absl::StatusOr<std::unique_ptr<async::WorkerPool>> pool = async::WorkerPool::Create(2, 1024);
  ASSERT_TRUE(pool.ok()) << pool.status();
  CountingExecutor checker(**pool);
  NotaryFetcher on_pool(Pinned("notary.test:8448", "ed25519:n", 'n'), client,
                        NotaryFetcher::Options{1000, &checker});
  NotaryFetcher inline_(Pinned("notary.test:8448", "ed25519:n", 'n'), client,
                        NotaryFetcher::Options{1000, nullptr});
  absl::StatusOr<KeysByServer> a = on_pool.FetchManyAndWait(queries, Soon());
  absl::StatusOr<KeysByServer> b = inline_.FetchManyAndWait(queries, Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(checker.posted.load(), 3);  // 150 entries, 64 a slice
  ASSERT_EQ(a->size(), 150u);
  ASSERT_EQ(b->size(), 150u);
  int good = 0;
  for (int i = 0; i < 150; ++i) {
    const std::string s = absl::StrCat("s", i, ".test");
    SCOPED_TRACE(s);
    ASSERT_EQ(a->at(Name(s)).ok(), b->at(Name(s)).ok());
    EXPECT_EQ(a->at(Name(s)).ok(), i % 10 != 3) << a->at(Name(s)).status();
    if (!a->at(Name(s)).ok()) {
      EXPECT_EQ(a->at(Name(s)).status(), b->at(Name(s)).status());
      // Names a few of the rejected entries and how many there were.
      EXPECT_TRUE(absl::StrContains(a->at(Name(s)).status().message(), "rejected 15 entries"))
          << a->at(Name(s)).status();
      continue;
    }
    ++good;
    EXPECT_EQ(a->at(Name(s))->server_name, s);
    EXPECT_EQ(a->at(Name(s))->raw_json, b->at(Name(s))->raw_json);
  }
  EXPECT_EQ(good, 135);
  (*pool)->Stop();
}

}  // namespace
}  // namespace keyverifier::fetch
