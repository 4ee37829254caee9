// The outbound address filter end to end: a real dnsmasq on loopback, the
// real resolver, discovery, HTTP client and federation client (the path a
// key fetch takes), and a TCP listener on 127.0.0.1 that counts the
// connections it accepts. With the default filter a server whose address is
// loopback, however DNS spells it, is refused before any connection; with
// the filter open the same server is reached, so the listener would have
// seen a connection had the filter let one through.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/clock/clock.h"
#include "service/net/cares_resolver.h"
#include "service/net/discovery.h"
#include "service/net/federation_client.h"
#include "service/net/fetch_engine.h"
#include "service/net/http_client.h"
#include "service/net/ip_filter.h"
#include "service/net/peer_verifier.h"
#include "service/net/well_known_fetcher.h"
#include "tests/testing/dnsmasq.h"
#include "tests/testing/server_name.h"

namespace keyverifier::net {
namespace {

using ::keyverifier::testing::Name;

using testing::Dnsmasq;

// A TCP listener on 127.0.0.1 that accepts, counts and closes every
// connection.
class CountingListener {
 public:
  CountingListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(fd_, 64) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "listener: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        accepted_.fetch_add(1);
        close(c);
      }
    });
  }
  ~CountingListener() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  // Connections accepted so far, including any still in the queue.
  int accepted() {
    const absl::Time until = absl::Now() + absl::Milliseconds(200);
    while (absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
    return accepted_.load();
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
};

// The service's outbound stack, as the app wires it, with `filter`.
class Stack {
 public:
  Stack(const std::string& dns_server, const IpFilter& filter) : filter_(filter) {
    engine_ = *FetchEngine::Create({});
    CaresResolver::Options dns;
    dns.servers = dns_server;
    absl::StatusOr<std::unique_ptr<CaresResolver>> resolver =
        CaresResolver::Create(*engine_, dns);
    EXPECT_TRUE(resolver.ok()) << resolver.status();
    resolver_ = *std::move(resolver);
    CurlHttpClient::Options http;
    http.connect_timeout = absl::Seconds(2);
    http.total_timeout = absl::Seconds(5);
    http_ = *CurlHttpClient::Create(*engine_, verifier_, filter_, http);
    well_known_ = std::make_unique<HttpsWellKnownFetcher>(*http_, *resolver_,
                                                          HttpsWellKnownFetcher::Options{});
    discovery_ = std::make_unique<ServerDiscovery>(*resolver_, *well_known_, filter_, clock_,
                                                   ServerDiscovery::Options{});
    federation_ = std::make_unique<FederationClient>(*discovery_, *http_);
  }
  ~Stack() { engine_->Stop(); }

  absl::StatusOr<HttpResponse> FetchKeys(const std::string& server) {
    HttpRequest request;
    request.path = "/_matrix/key/v2/server";
    return federation_->SendAndWait(Name(server), request, absl::Now() + absl::Seconds(20));
  }

 private:
  const IpFilter& filter_;
  SystemClock clock_;
  AcceptAnyPeer verifier_;
  std::unique_ptr<FetchEngine> engine_;
  std::unique_ptr<CaresResolver> resolver_;
  std::unique_ptr<CurlHttpClient> http_;
  std::unique_ptr<HttpsWellKnownFetcher> well_known_;
  std::unique_ptr<ServerDiscovery> discovery_;
  std::unique_ptr<FederationClient> federation_;
};

class OutboundFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Each server name's SRV record points at a target whose only address
    // record is the one named; the server names themselves have none, so
    // .well-known finds no address and discovery goes on to SRV.
    Dnsmasq::Records r;
    r.local_domains = {"example.test"};
    for (const auto& [name, record] :
         {std::pair<const char*, const char*>{"mapped", "::ffff:127.0.0.1"},
          {"plain", "127.0.0.1"}}) {
      r.srv_hosts.push_back(absl::StrCat("_matrix-fed._tcp.", name, ".example.test,target.",
                                         name, ".example.test,", listener_.port(), ",10,5"));
      r.host_records.push_back(absl::StrCat("target.", name, ".example.test,", record));
    }
    absl::StatusOr<std::unique_ptr<Dnsmasq>> d = Dnsmasq::Start(r);
    ASSERT_TRUE(d.ok()) << d.status();
    dns_ = *std::move(d);
  }

  CountingListener listener_;
  std::unique_ptr<Dnsmasq> dns_;
};

// The confirmed bug: the SRV target's only record is AAAA ::ffff:127.0.0.1.
// The default filter refuses it as the loopback address it is, and no
// connection reaches the listener.
TEST_F(OutboundFilterTest, MappedLoopbackFromDnsIsRefusedBeforeConnecting) {
  IpFilter filter = *IpFilter::Create({});
  Stack stack(dns_->server(), filter);
  absl::StatusOr<HttpResponse> r = stack.FetchKeys("mapped.example.test");
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("127.0.0.1 is in denied network 127.0.0.0/8"),
            std::string::npos)
      << r.status();
  EXPECT_EQ(listener_.accepted(), 0);
}

TEST_F(OutboundFilterTest, PlainLoopbackFromDnsIsRefusedBeforeConnecting) {
  IpFilter filter = *IpFilter::Create({});
  Stack stack(dns_->server(), filter);
  absl::StatusOr<HttpResponse> r = stack.FetchKeys("plain.example.test");
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("127.0.0.1 is in denied network 127.0.0.0/8"),
            std::string::npos)
      << r.status();
  EXPECT_EQ(listener_.accepted(), 0);
}

// An IP-literal server name in the mapped form is refused the same way.
TEST_F(OutboundFilterTest, MappedLoopbackLiteralIsRefusedBeforeConnecting) {
  IpFilter filter = *IpFilter::Create({});
  Stack stack(dns_->server(), filter);
  absl::StatusOr<HttpResponse> r =
      stack.FetchKeys(absl::StrCat("[::ffff:127.0.0.1]:", listener_.port()));
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("127.0.0.1 is in denied network 127.0.0.0/8"),
            std::string::npos)
      << r.status();
  EXPECT_EQ(listener_.accepted(), 0);
}

// The control: with the filter open, the same names reach the listener (it
// closes the connection, so the fetch itself fails), so the zeros above are
// the filter's doing.
TEST_F(OutboundFilterTest, WithTheFilterOpenTheSameServersAreReached) {
  IpFilter open = IpFilter::AllowAll();
  Stack stack(dns_->server(), open);
  int seen = 0;
  for (const std::string& server :
       {std::string("mapped.example.test"), std::string("plain.example.test"),
        absl::StrCat("[::ffff:127.0.0.1]:", listener_.port())}) {
    absl::StatusOr<HttpResponse> r = stack.FetchKeys(server);
    EXPECT_FALSE(absl::IsPermissionDenied(r.status())) << server << ": " << r.status();
    const int now = listener_.accepted();
    EXPECT_GT(now, seen) << server << ": " << r.status();
    seen = now;
  }
}

}  // namespace
}  // namespace keyverifier::net
