// HttpsWellKnownFetcher against a real HTTPS server on loopback.
#include "service/net/well_known_fetcher.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_net.h"
#include "tests/testing/https_server.h"

namespace keyverifier::net {
namespace {

using testing::FakeResolver;
using testing::HttpsServer;

class WellKnownFetcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    HttpsServer::Options o;
    o.names = {"a.test", "b.test", "loop.test", "big.test", "plain.test", "127.0.0.1"};
    o.routes_json = R"({
      "a.test/.well-known/matrix/server": {"status": 200,
          "body": "{\"m.server\": \"m.a.test:443\"}",
          "headers": {"Cache-Control": "max-age=120"}},
      "b.test/.well-known/matrix/server": {"status": 302,
          "headers": {"Location": "/moved"}},
      "b.test/moved": {"status": 301, "headers": {"Location": "https://a.test:{port}/final"}},
      "a.test/final": {"status": 200, "body": "{\"m.server\": \"final.test\"}"},
      "loop.test/.well-known/matrix/server": {"status": 302,
          "headers": {"Location": "/again"}},
      "loop.test/again": {"status": 302,
          "headers": {"Location": "/.well-known/matrix/server"}},
      "plain.test/.well-known/matrix/server": {"status": 302,
          "headers": {"Location": "http://plain.test/x"}},
      "big.test/.well-known/matrix/server": {"status": 200, "body": "x", "repeat": 70000}
    })";
    absl::StatusOr<std::unique_ptr<HttpsServer>> s = HttpsServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    for (const char* h : {"a.test", "b.test", "loop.test", "big.test", "plain.test"}) {
      resolver_.AddHost(h, {"127.0.0.1"});
    }
    engine_ = *FetchEngine::Create({});
    http_ = *CurlHttpClient::Create(*engine_, verifier_, filter_, {});
    fetcher_ = std::make_unique<HttpsWellKnownFetcher>(
        *http_, resolver_,
        HttpsWellKnownFetcher::Options{5, static_cast<uint16_t>(server_->port())});
  }
  static absl::Time Soon() { return absl::Now() + absl::Seconds(20); }
  static absl::StatusOr<WellKnownResponse> FetchAndWait(WellKnownFetcher& f,
                                                       absl::string_view host,
                                                       absl::Time deadline) {
    return async::Wait<WellKnownResponse>(
        [&](auto cb) { f.Fetch(host, deadline, std::move(cb)); });
  }

  static HttpsServer* server_;
  AcceptAnyPeer verifier_;
  IpFilter filter_ = IpFilter::AllowAll();
  FakeResolver resolver_;
  std::unique_ptr<FetchEngine> engine_;
  std::unique_ptr<CurlHttpClient> http_;
  std::unique_ptr<HttpsWellKnownFetcher> fetcher_;
};
HttpsServer* WellKnownFetcherTest::server_ = nullptr;

TEST_F(WellKnownFetcherTest, FetchesBodyAndCacheControl) {
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "a.test", Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(ParseWellKnownBody(r->body)->str(), "m.a.test:443");
  EXPECT_EQ(r->cache_control, "max-age=120");
}

TEST_F(WellKnownFetcherTest, MissingIsAnHttpStatusNotAnError) {
  resolver_.AddHost("none.test", {"127.0.0.1"});
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "none.test", Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
}

TEST_F(WellKnownFetcherTest, RedirectsAreFollowedRelativeAndAbsolute) {
  absl::StatusOr<UrlParts> u = ResolveUrl("https://b.test:8448/.well-known/matrix/server",
                                          "/moved?x=1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "b.test");
  EXPECT_EQ(u->port, 8448);
  EXPECT_EQ(u->path, "/moved?x=1");
  u = ResolveUrl("https://b.test/a", "https://[2001:db8::1]/final");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "2001:db8::1");
  EXPECT_EQ(u->port, 443);

  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "b.test", Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(ParseWellKnownBody(r->body)->str(), "final.test");
  std::vector<std::string> reqs = server_->Requests();
  bool moved = false, final_on_a = false;
  for (const auto& l : reqs) {
    moved |= absl::StrContains(l, "\"path\": \"/moved\"");
    final_on_a |= absl::StrContains(l, "\"path\": \"/final\"") &&
                  absl::StrContains(l, "\"sni\": \"a.test\"");
  }
  EXPECT_TRUE(moved);
  EXPECT_TRUE(final_on_a);
}

TEST_F(WellKnownFetcherTest, RedirectLoopIsRefused) {
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "loop.test", Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "redirect loop")) << r.status();
}

TEST_F(WellKnownFetcherTest, RedirectToPlainHttpIsRefused) {
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "plain.test", Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "non-https")) << r.status();
}

TEST_F(WellKnownFetcherTest, BodyIsSizeLimited) {
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "big.test", Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
}

TEST_F(WellKnownFetcherTest, UnknownHostIsNotFound) {
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "unknown.test", Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(WellKnownFetcherTest, FilterAppliesToEveryHop) {
  IpFilter deny = *IpFilter::Create({});
  auto http = *CurlHttpClient::Create(*engine_, verifier_, deny, {});
  HttpsWellKnownFetcher f(*http, resolver_, {5, static_cast<uint16_t>(server_->port())});
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(f, "a.test", Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
}

TEST_F(WellKnownFetcherTest, AddressesAreTriedInTurn) {
  // Nothing listens on 127.0.0.2: refused, then the next address answers.
  resolver_.AddHost("two.test", {"127.0.0.2", "127.0.0.1"});
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "two.test", Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  bool reached = false;
  for (const auto& l : server_->Requests()) {
    reached |= absl::StrContains(l, "\"sni\": \"two.test\"");
  }
  EXPECT_TRUE(reached);
  // Every address refused: the failures are joined.
  resolver_.AddHost("none-up.test", {"127.0.0.2", "127.0.0.3"});
  r = FetchAndWait(*fetcher_, "none-up.test", Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "127.0.0.2")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "127.0.0.3")) << r.status();
}

TEST_F(WellKnownFetcherTest, RunsWithoutBlockingAndManyAtOnce) {
  // Started from this thread, answered on the engine's loop.
  constexpr int kFetches = 20;
  absl::Mutex mu;
  int good = 0, answered = 0;
  bool on_loop = true;
  for (int i = 0; i < kFetches; ++i) {
    fetcher_->Fetch("b.test", Soon(), [&](absl::StatusOr<WellKnownResponse> r) {
      absl::MutexLock lock(&mu);
      ++answered;
      good += r.ok() && r->status == 200;
      on_loop &= engine_->InLoop();
    });
  }
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return answered == kFetches; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60)));
  }
  engine_->Stop();
  EXPECT_EQ(good, kFetches);
  EXPECT_TRUE(on_loop);
}

TEST_F(WellKnownFetcherTest, StoppedEngineCancelsAtOnce) {
  engine_->Stop();
  absl::StatusOr<WellKnownResponse> r = FetchAndWait(*fetcher_, "a.test", Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
}

}  // namespace
}  // namespace keyverifier::net
