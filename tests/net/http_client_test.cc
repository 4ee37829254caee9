// CurlHttpClient against a real HTTPS server on loopback.
#include "service/net/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/free_port.h"
#include "tests/testing/https_server.h"

namespace keyverifier::net {
namespace {

using testing::HttpsServer;

// Records what the client hands over; accepts or rejects as told.
class RecordingVerifier : public PeerVerifier {
 public:
  absl::Status VerifyPeer(const std::vector<std::string>& chain,
                          absl::string_view name) const override {
    absl::MutexLock lock(&mu_);
    names_.push_back(std::string(name));
    chain_size_ = chain.size();
    if (reject_) return absl::PermissionDeniedError("hostname mismatch (test)");
    return absl::OkStatus();
  }
  absl::Status ConfigureContext(SSL_CTX* ctx) const override {
    SSL_CTX_set_min_proto_version(ctx, min_version_);
    return absl::OkStatus();
  }
  std::vector<std::string> names() const {
    absl::MutexLock lock(&mu_);
    return names_;
  }
  size_t chain_size() const {
    absl::MutexLock lock(&mu_);
    return chain_size_;
  }
  bool reject_ = false;
  int min_version_ = TLS1_2_VERSION;

 private:
  mutable absl::Mutex mu_;
  mutable std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
  mutable size_t chain_size_ ABSL_GUARDED_BY(mu_) = 0;
};

class HttpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    HttpsServer::Options o;
    o.names = {"a.test", "127.0.0.1"};
    o.routes_json = R"({
      "/ok": {"status": 200, "body": "{\"hello\":1}", "headers": {"Cache-Control": "max-age=60"}},
      "/big": {"status": 200, "body": "0123456789", "repeat": 1000},
      "/slow": {"status": 200, "body": "{}", "delay_ms": 3000},
      "/redirect": {"status": 302, "headers": {"Location": "https://elsewhere.test/"}},
      "/post": {"status": 200, "body": "{}"}
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
    engine_ = *FetchEngine::Create({});
    client_ = *CurlHttpClient::Create(*engine_, verifier_, allow_all_, {});
  }

  HttpRequest Request(const std::string& path, const std::string& host = "a.test") {
    HttpRequest r;
    r.host_header = absl::StrCat(host, ":", server_->port());
    r.path = path;
    r.connect_to = {*ParseIpAddress("127.0.0.1"), static_cast<uint16_t>(server_->port())};
    r.tls_name = host;
    return r;
  }
  static absl::Time Soon() { return absl::Now() + absl::Seconds(20); }
  std::string LastRequest() {
    std::vector<std::string> all = server_->Requests();
    return all.empty() ? "" : all.back();
  }

  static HttpsServer* server_;
  RecordingVerifier verifier_;
  IpFilter allow_all_ = IpFilter::AllowAll();
  std::unique_ptr<FetchEngine> engine_;
  std::unique_ptr<CurlHttpClient> client_;
};
HttpsServer* HttpClientTest::server_ = nullptr;

TEST_F(HttpClientTest, GetSendsHostAndSniAndHandsTheChainToTheVerifier) {
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(Request("/ok"), Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"hello\":1}");
  EXPECT_EQ(r->headers["cache-control"], "max-age=60");
  EXPECT_EQ(r->peer_chain_der.size(), 1u);
  EXPECT_EQ(verifier_.names(), std::vector<std::string>{"a.test"});
  EXPECT_EQ(verifier_.chain_size(), 1u);
  std::string logged = LastRequest();
  EXPECT_NE(logged.find(absl::StrCat("\"host\": \"a.test:", server_->port(), "\"")),
            std::string::npos)
      << logged;
  EXPECT_NE(logged.find("\"sni\": \"a.test\""), std::string::npos) << logged;
}

TEST_F(HttpClientTest, NoSniForIpLiteral) {
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(Request("/ok", "127.0.0.1"), Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(LastRequest().find("\"sni\": null"), std::string::npos) << LastRequest();
  EXPECT_EQ(verifier_.names(), std::vector<std::string>{"127.0.0.1"});
}

TEST_F(HttpClientTest, RejectedCertificateAbortsBeforeAnyRequest) {
  size_t before = server_->Requests().size();
  verifier_.reject_ = true;
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(Request("/ok"), Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "certificate rejected for a.test"))
      << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "hostname mismatch (test)"));
  EXPECT_EQ(server_->Requests().size(), before);
}

TEST_F(HttpClientTest, DeniedAddressIsNeverContacted) {
  IpFilter deny_loopback = *IpFilter::Create({});
  auto client = *CurlHttpClient::Create(*engine_, verifier_, deny_loopback, {});
  absl::StatusOr<HttpResponse> r = client->SendAndWait(Request("/ok"), Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "127.0.0.0/8")) << r.status();
  EXPECT_TRUE(verifier_.names().empty());
}

// An endpoint whose address was filled in as raw IPv6 bytes ::ffff:127.0.0.1
// (not built by IpAddress::V6) is still judged as the loopback address it
// reaches.
TEST_F(HttpClientTest, MappedLoopbackEndpointIsNeverContacted) {
  IpFilter deny_loopback = *IpFilter::Create({});
  auto client = *CurlHttpClient::Create(*engine_, verifier_, deny_loopback, {});
  HttpRequest req = Request("/ok");
  req.connect_to.address = IpAddress();
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", req.connect_to.address.bytes.data()), 1);
  const size_t before = server_->Requests().size();
  absl::StatusOr<HttpResponse> r = client->SendAndWait(req, Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "127.0.0.1 is in denied network 127.0.0.0/8"))
      << r.status();
  EXPECT_TRUE(verifier_.names().empty());
  EXPECT_EQ(server_->Requests().size(), before);
}

TEST_F(HttpClientTest, ResponseSizeIsLimited) {
  HttpRequest req = Request("/big");
  req.max_response_bytes = 5000;
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(req, Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  req.max_response_bytes = 10000;
  r = client_->SendAndWait(req, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body.size(), 10000u);
}

TEST_F(HttpClientTest, DeadlineIsHonoured) {
  absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> r =
      client_->SendAndWait(Request("/slow"), absl::Now() + absl::Milliseconds(300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  r = client_->SendAndWait(Request("/ok"), absl::Now() - absl::Seconds(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
}

TEST_F(HttpClientTest, RedirectsAreNotFollowed) {
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(Request("/redirect"), Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->headers["location"], "https://elsewhere.test/");
}

TEST_F(HttpClientTest, PostSendsTheBody) {
  HttpRequest req = Request("/post");
  req.method = "POST";
  req.body = R"({"server_keys":{}})";
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(req, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(LastRequest().find(R"("method": "POST")"), std::string::npos);
  EXPECT_NE(LastRequest().find(R"(server_keys)"), std::string::npos) << LastRequest();
}

TEST_F(HttpClientTest, ClosedPortIsUnavailable) {
  HttpRequest req = Request("/ok");
  req.connect_to.port = static_cast<uint16_t>(*testing::FreeLoopbackPort());
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(req, Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(HttpClientTest, MinimumTlsVersionIsApplied) {
  HttpsServer::Options o;
  o.names = {"a.test"};
  o.routes_json = R"({"/ok": {"status": 200, "body": "{}"}})";
  o.max_tls = "1.2";
  auto old_server = *HttpsServer::Start(o);
  HttpRequest req = Request("/ok");
  req.host_header = absl::StrCat("a.test:", old_server->port());
  req.connect_to.port = static_cast<uint16_t>(old_server->port());
  ASSERT_TRUE(client_->SendAndWait(req, Soon()).ok());
  verifier_.min_version_ = TLS1_3_VERSION;
  absl::StatusOr<HttpResponse> r = client_->SendAndWait(req, Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(HttpClientTest, BadRequestsAreRefused) {
  HttpRequest req = Request("no-slash");
  EXPECT_EQ(client_->SendAndWait(req, Soon()).status().code(), absl::StatusCode::kInvalidArgument);
  req = Request("/ok");
  req.host_header = "a.test\r\nX: y";
  EXPECT_EQ(client_->SendAndWait(req, Soon()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpClientTest, EveryRequestHasItsOwnConnectionAndCheck) {
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> r = client_->SendAndWait(Request("/ok"), Soon());
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // A reused connection would have skipped the verifier.
  EXPECT_EQ(verifier_.names().size(), 3u);
}

TEST_F(HttpClientTest, AnswersOnTheEngineLoop) {
  absl::Notification done;
  bool on_loop = false;
  client_->Send(Request("/ok"), Soon(), [&](absl::StatusOr<HttpResponse> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    on_loop = engine_->InLoop();
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  engine_->Stop();
  EXPECT_TRUE(on_loop);
}

TEST_F(HttpClientTest, RequestsAfterStopAreCancelledInline) {
  engine_->Stop();
  bool answered = false;
  client_->Send(Request("/ok"), Soon(), [&](absl::StatusOr<HttpResponse> r) {
    answered = true;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  });
  EXPECT_TRUE(answered);
}

TEST_F(HttpClientTest, StopCancelsARequestInFlight) {
  auto slow_requests = [] {
    std::vector<std::string> all = server_->Requests();
    return std::count_if(all.begin(), all.end(), [](const std::string& l) {
      return absl::StrContains(l, "\"path\": \"/slow\"");
    });
  };
  const auto before = slow_requests();
  absl::Notification done;
  absl::Status status;
  client_->Send(Request("/slow"), Soon(), [&](absl::StatusOr<HttpResponse> r) {
    status = r.status();
    done.Notify();
  });
  // The server has the request (and sits on it for 3 s).
  for (absl::Time give_up = Soon(); slow_requests() == before && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(slow_requests(), before);
  const absl::Time stop = absl::Now();
  engine_->Stop();
  EXPECT_TRUE(done.HasBeenNotified());
  EXPECT_LT(absl::Now() - stop, absl::Seconds(2));  // not the server's 3 s
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "GET https://a.test:")) << status;
}

// A listening socket on loopback that never accepts: the kernel completes
// up to `backlog` + 1 TCP handshakes and then drops further SYNs.
class Unaccepting {
 public:
  explicit Unaccepting(int backlog) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd_, backlog), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
  }
  ~Unaccepting() {
    for (int f : fillers_) close(f);
    close(fd_);
  }
  // Takes every place in the accept queue, so that the next SYN is dropped.
  void Fill(int n) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    for (int i = 0; i < n; ++i) {
      int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);  // in progress, or done
      fillers_.push_back(f);
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  HttpRequest Request() const {
    HttpRequest r;
    r.host_header = absl::StrCat("a.test:", port_);
    r.path = "/ok";
    r.connect_to = {*ParseIpAddress("127.0.0.1"), port_};
    r.tls_name = "a.test";
    return r;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

// A peer that takes the connection and never answers the handshake costs
// the handshake's budget, not the request's, and it is the server's failure
// (UNAVAILABLE), not the caller's deadline.
TEST_F(HttpClientTest, SilentPeerCostsTheHandshakeBudget) {
  CurlHttpClient::Options o;
  o.connect_timeout = absl::Seconds(5);
  o.tls_handshake_timeout = absl::Milliseconds(300);
  o.total_timeout = absl::Seconds(10);
  std::unique_ptr<CurlHttpClient> client = *CurlHttpClient::Create(*engine_, verifier_, allow_all_, o);
  Unaccepting silent(16);
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> r = client->SendAndWait(silent.Request(), Soon());
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "the TLS handshake did not finish within 300ms of connecting"))
      << r.status();
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(3));  // not the 5 s connect nor the 10 s request budget
}

// A connection that is never made costs the connect budget.
TEST_F(HttpClientTest, UnansweredConnectCostsTheConnectBudget) {
  CurlHttpClient::Options o;
  o.connect_timeout = absl::Milliseconds(300);
  o.tls_handshake_timeout = absl::Seconds(5);
  o.total_timeout = absl::Seconds(10);
  std::unique_ptr<CurlHttpClient> client = *CurlHttpClient::Create(*engine_, verifier_, allow_all_, o);
  Unaccepting full(0);
  full.Fill(3);
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> r = client->SendAndWait(full.Request(), Soon());
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no connection within 300ms"))
      << r.status();
  EXPECT_LT(took, absl::Seconds(3));
}

}  // namespace
}  // namespace keyverifier::net
