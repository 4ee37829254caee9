// FederationClient: discovery, then the endpoints in order until one gives
// an HTTP answer; over scripted DNS, .well-known and HTTP (the fakes answer
// inline; SendAndWait waits for the callback).
#include "service/net/federation_client.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "service/net/discovery.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http.h"
#include "tests/fakes/fake_net.h"
#include "tests/testing/server_name.h"

namespace keyverifier::net {
namespace {

using ::keyverifier::testing::Name;

using testing::FakeClock;
using testing::FakeHttpClient;
using testing::FakeResolver;
using testing::FakeWellKnownFetcher;

constexpr char kPath[] = "/_matrix/federation/v1/version";

// Records the deadline of every request; answers as FakeHttpClient does.
class DeadlineRecordingHttp : public FakeHttpClient {
 public:
  void Send(const HttpRequest& req, absl::Time deadline,
            async::Callback<HttpResponse> done) override {
    {
      absl::MutexLock lock(&mu_);
      deadlines_.push_back(deadline);
    }
    FakeHttpClient::Send(req, deadline, std::move(done));
  }
  std::vector<absl::Time> deadlines() {
    absl::MutexLock lock(&mu_);
    return deadlines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
};

std::vector<std::string> ConnectedTo(const std::vector<HttpRequest>& requests) {
  std::vector<std::string> out;
  for (const HttpRequest& r : requests) out.push_back(r.connect_to.ToString());
  return out;
}

HttpRequest Get() {
  HttpRequest r;
  r.path = kPath;
  return r;
}

class FederationClientTest : public ::testing::Test {
 protected:
  FederationClientTest()
      : clock_(absl::FromUnixSeconds(1700000000)),
        filter_(IpFilter::AllowAll()),
        discovery_(resolver_, well_known_, filter_, clock_, {}) {
    resolver_.AddHost("multi.test", {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4",
                                     "192.0.2.5", "192.0.2.6"});
  }
  absl::Time Deadline() const { return clock_.Now() + absl::Seconds(30); }

  FakeClock clock_;
  FakeResolver resolver_;
  FakeWellKnownFetcher well_known_;
  IpFilter filter_;
  ServerDiscovery discovery_;
  DeadlineRecordingHttp http_;
};

// Holds every request until Answer(): requests under way, counted.
class HoldingHttp : public HttpClient {
 public:
  void Send(const HttpRequest& req, absl::Time, async::Callback<HttpResponse> done) override {
    absl::MutexLock lock(&mu_);
    held_.push_back({req.host_header, std::move(done)});
  }
  std::vector<std::string> hosts() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const auto& h : held_) out.push_back(h.first);
    return out;
  }
  // Answers the request to `host` (200).
  void Answer(const std::string& host) {
    async::Callback<HttpResponse> done;
    {
      absl::MutexLock lock(&mu_);
      auto it = std::find_if(held_.begin(), held_.end(),
                             [&](const auto& h) { return h.first == host; });
      ASSERT_NE(it, held_.end()) << host;
      done = std::move(it->second);
      held_.erase(it);
    }
    HttpResponse r;
    r.status = 200;
    done(std::move(r));
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<std::string, async::Callback<HttpResponse>>> held_ ABSL_GUARDED_BY(mu_);
};

// Bulk requests (a batch's) take at most max_bulk connections; a single
// lookup never waits behind them; the per-server limit queues the rest.
TEST_F(FederationClientTest, BulkRequestsLeaveRoomForSingleLookups) {
  for (const char* host : {"a.test", "b.test", "c.test", "d.test"}) {
    resolver_.AddHost(host, {"192.0.2.9"});
  }
  HoldingHttp http;
  FederationClient::Options o;
  o.max_bulk = 2;
  o.max_per_server = 1;
  FederationClient client(discovery_, http, o);
  int answered = 0;
  auto count = [&answered](absl::StatusOr<HttpResponse> r) { answered += r.ok(); };
  for (const char* host : {"a.test:8448", "b.test:8448", "c.test:8448"}) {
    client.Send(Name(host), Get(), Deadline(), count, FederationClient::Priority::kBulk);
  }
  EXPECT_EQ(http.hosts(), (std::vector<std::string>{"a.test:8448", "b.test:8448"}));
  client.Send(Name("d.test:8448"), Get(), Deadline(), count);  // interactive: at once
  client.Send(Name("d.test:8448"), Get(), Deadline(), count);  // the same server: waits its turn
  EXPECT_EQ(http.hosts(),
            (std::vector<std::string>{"a.test:8448", "b.test:8448", "d.test:8448"}));
  http.Answer("a.test:8448");  // frees a bulk slot: c goes
  EXPECT_EQ(http.hosts(),
            (std::vector<std::string>{"b.test:8448", "d.test:8448", "c.test:8448"}));
  http.Answer("d.test:8448");  // the second request to d goes
  EXPECT_EQ(http.hosts(),
            (std::vector<std::string>{"b.test:8448", "c.test:8448", "d.test:8448"}));
  for (const char* host : {"b.test:8448", "c.test:8448", "d.test:8448"}) http.Answer(host);
  EXPECT_EQ(answered, 5);
  EXPECT_TRUE(http.hosts().empty());
}

// With a lane per priority, each priority's lookups and requests go to its
// own resolver, .well-known fetcher and HTTP client (in the service, each on
// an event loop of its own); the .well-known cache is shared.
TEST_F(FederationClientTest, EachPriorityUsesItsOwnLane) {
  FakeResolver bulk_resolver, interactive_resolver;
  FakeWellKnownFetcher bulk_well_known, interactive_well_known;
  for (FakeResolver* r : {&bulk_resolver, &interactive_resolver}) {
    r->AddHost("a.test", {"192.0.2.1"});
    r->AddHost("b.test", {"192.0.2.2"});
  }
  ServerDiscovery discovery({&bulk_resolver, &bulk_well_known},
                            {&interactive_resolver, &interactive_well_known}, filter_, clock_,
                            {});
  FakeHttpClient bulk_http, interactive_http;
  for (FakeHttpClient* h : {&bulk_http, &interactive_http}) {
    h->Set("GET", "a.test", kPath, 200, "{}");
    h->Set("GET", "b.test", kPath, 200, "{}");
  }
  FederationClient client(discovery, bulk_http, interactive_http, FederationClient::Options{});
  ASSERT_TRUE(client.SendAndWait(Name("a.test"), Get(), Deadline()).ok());  // interactive
  absl::StatusOr<HttpResponse> bulk = async::Wait<HttpResponse>([&](auto cb) {
    client.Send(Name("b.test"), Get(), Deadline(), std::move(cb),
                FederationClient::Priority::kBulk);
  });
  ASSERT_TRUE(bulk.ok()) << bulk.status();
  EXPECT_EQ(ConnectedTo(interactive_http.requests()), std::vector<std::string>{"192.0.2.1:8448"});
  EXPECT_EQ(ConnectedTo(bulk_http.requests()), std::vector<std::string>{"192.0.2.2:8448"});
  for (const std::string& l : interactive_resolver.lookups()) {
    EXPECT_FALSE(absl::StrContains(l, "b.test")) << l;
  }
  for (const std::string& l : bulk_resolver.lookups()) {
    EXPECT_FALSE(absl::StrContains(l, "a.test")) << l;
  }
  EXPECT_FALSE(interactive_resolver.lookups().empty());
  EXPECT_FALSE(bulk_resolver.lookups().empty());
  EXPECT_EQ(interactive_well_known.fetches("a.test"), 1);
  EXPECT_EQ(interactive_well_known.fetches("b.test"), 0);
  EXPECT_EQ(bulk_well_known.fetches("b.test"), 1);
  EXPECT_EQ(bulk_well_known.fetches("a.test"), 0);
  // What one lane learned of .well-known serves the other.
  ASSERT_TRUE(client.SendAndWait(Name("b.test"), Get(), Deadline()).ok());
  EXPECT_EQ(interactive_well_known.fetches("b.test"), 0);
}

TEST_F(FederationClientTest, EndpointsAreTriedInOrderUntilOneAnswers) {
  http_.FailAddress("192.0.2.1:8448", absl::UnavailableError("connection refused"));
  http_.FailAddress("192.0.2.2:8448", absl::UnavailableError("connect timed out"));
  http_.Set("GET", "multi.test:8448", kPath, 200, R"({"server":{}})");
  FederationClient client(discovery_, http_);
  const absl::Time deadline = Deadline();
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("multi.test:8448"), Get(), deadline);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"server":{}})");
  EXPECT_EQ(ConnectedTo(http_.requests()),
            (std::vector<std::string>{"192.0.2.1:8448", "192.0.2.2:8448", "192.0.2.3:8448"}));
  // Every attempt within the caller's deadline.
  ASSERT_EQ(http_.deadlines().size(), 3u);
  for (absl::Time t : http_.deadlines()) EXPECT_LE(t, deadline);
}

TEST_F(FederationClientTest, AnHttpErrorIsAnAnswer) {
  http_.Set("GET", "multi.test:8448", kPath, 500, "oops");
  FederationClient client(discovery_, http_);
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("multi.test:8448"), Get(), Deadline());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(http_.requests().size(), 1u);
}

TEST_F(FederationClientTest, AtMostMaxEndpointsAreTried) {
  // Nothing scripted: every address refuses.
  FederationClient three(discovery_, http_, FederationClient::Options{3});
  absl::StatusOr<HttpResponse> r = three.SendAndWait(Name("multi.test:8448"), Get(), Deadline());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(ConnectedTo(http_.requests()),
            (std::vector<std::string>{"192.0.2.1:8448", "192.0.2.2:8448", "192.0.2.3:8448"}));
  // Every failure is in the error; the untried addresses are not.
  for (const char* tried : {"192.0.2.1:8448", "192.0.2.2:8448", "192.0.2.3:8448"}) {
    EXPECT_TRUE(absl::StrContains(r.status().message(), tried)) << r.status();
  }
  EXPECT_FALSE(absl::StrContains(r.status().message(), "192.0.2.4")) << r.status();

  FederationClient by_default(discovery_, http_);  // 4
  r = by_default.SendAndWait(Name("multi.test:8448"), Get(), Deadline());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(http_.requests().size(), 3u + 4u);
}

TEST_F(FederationClientTest, ADeadlineStopsTheLoop) {
  http_.FailAddress("192.0.2.1:8448", absl::UnavailableError("connection refused"));
  http_.FailAddress("192.0.2.2:8448", absl::DeadlineExceededError("timed out"));
  http_.Set("GET", "multi.test:8448", kPath, 200, "{}");
  FederationClient client(discovery_, http_);
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("multi.test:8448"), Get(), Deadline());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "connection refused")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "timed out")) << r.status();
  EXPECT_EQ(ConnectedTo(http_.requests()),
            (std::vector<std::string>{"192.0.2.1:8448", "192.0.2.2:8448"}));
}

TEST_F(FederationClientTest, ShutdownStopsTheLoop) {
  http_.FailAddress("192.0.2.1:8448", absl::CancelledError("engine stopped"));
  http_.Set("GET", "multi.test:8448", kPath, 200, "{}");
  FederationClient client(discovery_, http_);
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("multi.test:8448"), Get(), Deadline());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_EQ(http_.requests().size(), 1u);
}

TEST_F(FederationClientTest, EveryEndpointRefusedKeepsTheCode) {
  resolver_.AddHost("two.test", {"192.0.2.30", "192.0.2.31"});
  http_.FailAddress("192.0.2.30:8448",
                    absl::PermissionDeniedError("certificate rejected: expired"));
  http_.FailAddress("192.0.2.31:8448",
                    absl::PermissionDeniedError("certificate rejected: hostname_mismatch"));
  FederationClient client(discovery_, http_);
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("two.test:8448"), Get(), Deadline());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "expired")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "hostname_mismatch")) << r.status();
}

TEST_F(FederationClientTest, HostHeaderAndTlsNameComeFromDiscovery) {
  well_known_.Set("example.org", 200, R"({"m.server": "m.example.net:443"})");
  resolver_.AddHost("m.example.net", {"192.0.2.50"});
  http_.Set("POST", "m.example.net:443", "/_matrix/key/v2/query", 200, "{}");
  FederationClient client(discovery_, http_);
  HttpRequest req;
  req.method = "POST";
  req.path = "/_matrix/key/v2/query";
  req.body = R"({"server_keys":{}})";
  req.headers = {{"X-Test", "1"}};
  req.max_response_bytes = 1234;
  req.host_header = "caller.invalid";  // replaced by discovery's
  req.tls_name = "caller.invalid";
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("example.org"), req, Deadline());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(http_.requests().size(), 1u);
  const HttpRequest sent = http_.requests()[0];
  EXPECT_EQ(sent.host_header, "m.example.net:443");
  EXPECT_EQ(sent.tls_name, "m.example.net");
  EXPECT_EQ(sent.connect_to.ToString(), "192.0.2.50:443");
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.path, "/_matrix/key/v2/query");
  EXPECT_EQ(sent.body, R"({"server_keys":{}})");
  EXPECT_EQ(sent.headers, req.headers);
  EXPECT_EQ(sent.max_response_bytes, 1234u);
}

TEST_F(FederationClientTest, SrvTargetsAreConnectedToButNeverNamed) {
  well_known_.Set("srv.org", 404, "not found");
  resolver_.AddSrv("_matrix-fed._tcp.srv.org", {{"fed.srv.org", 8443, 0, 0}});
  resolver_.AddHost("fed.srv.org", {"192.0.2.60"});
  http_.Set("GET", "srv.org", kPath, 200, "{}");
  FederationClient client(discovery_, http_);
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("srv.org"), Get(), Deadline());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].host_header, "srv.org");
  EXPECT_EQ(http_.requests()[0].tls_name, "srv.org");
  EXPECT_EQ(http_.requests()[0].connect_to.ToString(), "192.0.2.60:8443");
}

TEST_F(FederationClientTest, IpLiteralNamesTheAddress) {
  http_.Set("GET", "192.0.2.7:8449", kPath, 200, "{}");
  FederationClient client(discovery_, http_);
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("192.0.2.7:8449"), Get(), Deadline());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].host_header, "192.0.2.7:8449");
  EXPECT_EQ(http_.requests()[0].tls_name, "192.0.2.7");
  EXPECT_EQ(http_.requests()[0].connect_to.ToString(), "192.0.2.7:8449");
}

TEST_F(FederationClientTest, ADiscoveryFailureSendsNothing) {
  FederationClient client(discovery_, http_);
  absl::StatusOr<HttpResponse> r = client.SendAndWait(Name("nowhere.test"), Get(), Deadline());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_TRUE(http_.requests().empty());
}

TEST_F(FederationClientTest, TheCallbackRunsOnce) {
  http_.FailAddress("192.0.2.1:8448", absl::UnavailableError("connection refused"));
  http_.Set("GET", "multi.test:8448", kPath, 204, "");
  FederationClient client(discovery_, http_);
  int calls = 0;
  absl::StatusOr<HttpResponse> got;
  client.Send(Name("multi.test:8448"), Get(), Deadline(), [&](absl::StatusOr<HttpResponse> r) {
    ++calls;
    got = std::move(r);
  });
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status, 204);
}

}  // namespace
}  // namespace keyverifier::net
