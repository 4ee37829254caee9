// CaresResolver against a real dnsmasq on loopback.
#include "service/net/cares_resolver.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "gtest/gtest.h"
#include "tests/testing/dnsmasq.h"
#include "tests/testing/free_port.h"

namespace keyverifier::net {
namespace {

using testing::Dnsmasq;

class CaresResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Dnsmasq::Records r;
    r.local_domains = {"example.test"};
    r.srv_hosts = {"_matrix-fed._tcp.srv.example.test,t1.example.test,8449,10,5",
                   "_matrix-fed._tcp.srv.example.test,t2.example.test,8450,20,0"};
    r.host_records = {"t1.example.test,127.0.0.11,::11",
                      "t2.example.test,127.0.0.12",
                      "v6only.example.test,fd00::1"};
    r.cnames = {"alias.example.test,t2.example.test"};
    absl::StatusOr<std::unique_ptr<Dnsmasq>> d = Dnsmasq::Start(r);
    ASSERT_TRUE(d.ok()) << d.status();
    dns_ = d->release();
  }
  static void TearDownTestSuite() {
    delete dns_;
    dns_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(dns_, nullptr); }

  std::unique_ptr<CaresResolver> Make(CaresResolver::Options o = {}) {
    o.servers = dns_->server();
    absl::StatusOr<std::unique_ptr<CaresResolver>> r = CaresResolver::Create(o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }
  static absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

  static Dnsmasq* dns_;
};
Dnsmasq* CaresResolverTest::dns_ = nullptr;

std::vector<std::string> Strings(const std::vector<IpAddress>& v) {
  std::vector<std::string> out;
  for (const IpAddress& a : v) out.push_back(a.ToString());
  return out;
}

TEST_F(CaresResolverTest, SrvRecords) {
  auto r = Make();
  absl::StatusOr<std::vector<SrvRecord>> srv =
      r->LookupSrv("_matrix-fed._tcp.srv.example.test", Soon());
  ASSERT_TRUE(srv.ok()) << srv.status();
  ASSERT_EQ(srv->size(), 2u);
  std::sort(srv->begin(), srv->end(),
            [](const SrvRecord& a, const SrvRecord& b) { return a.priority < b.priority; });
  EXPECT_EQ((*srv)[0].target, "t1.example.test");
  EXPECT_EQ((*srv)[0].port, 8449);
  EXPECT_EQ((*srv)[0].priority, 10);
  EXPECT_EQ((*srv)[0].weight, 5);
  EXPECT_EQ((*srv)[1].target, "t2.example.test");
  EXPECT_EQ((*srv)[1].port, 8450);
}

TEST_F(CaresResolverTest, MissingSrvIsNotFound) {
  auto r = Make();
  absl::StatusOr<std::vector<SrvRecord>> srv =
      r->LookupSrv("_matrix-fed._tcp.none.example.test", Soon());
  EXPECT_EQ(srv.status().code(), absl::StatusCode::kNotFound) << srv.status();
  EXPECT_NE(srv.status().message().find("_matrix-fed._tcp.none.example.test"),
            std::string::npos);
}

TEST_F(CaresResolverTest, HostGivesIpv6ThenIpv4) {
  auto r = Make();
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHost("t1.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), (std::vector<std::string>{"::11", "127.0.0.11"}));
  a = r->LookupHost("v6only.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), std::vector<std::string>{"fd00::1"});
}

TEST_F(CaresResolverTest, CnameIsFollowed) {
  auto r = Make();
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHost("alias.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), std::vector<std::string>{"127.0.0.12"});
}

TEST_F(CaresResolverTest, UnknownHostIsNotFound) {
  auto r = Make();
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHost("nope.example.test", Soon());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound) << a.status();
}

TEST_F(CaresResolverTest, OverridesAnswerWithoutDns) {
  CaresResolver::Options o;
  o.host_overrides["Pinned.Example.Test"] = {"192.0.2.7", "2001:db8::7"};
  auto r = Make(o);
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHost("pinned.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), (std::vector<std::string>{"192.0.2.7", "2001:db8::7"}));
}

TEST_F(CaresResolverTest, SilentServerTimesOutAsUnavailableOrDeadline) {
  // A UDP port nobody answers on.
  absl::StatusOr<int> port = testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  CaresResolver::Options o;
  o.servers = absl::StrCat("127.0.0.1:", *port);
  o.query_timeout = absl::Milliseconds(100);
  o.tries = 1;
  auto r = *CaresResolver::Create(o);
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHost("t1.example.test", Soon());
  EXPECT_TRUE(absl::IsUnavailable(a.status())) << a.status();
  // The caller's deadline wins over c-ares' own timeouts.
  o.query_timeout = absl::Seconds(5);
  r = *CaresResolver::Create(o);
  a = r->LookupHost("t1.example.test", absl::Now() + absl::Milliseconds(50));
  EXPECT_TRUE(absl::IsDeadlineExceeded(a.status()) || absl::IsUnavailable(a.status()))
      << a.status();
}

TEST_F(CaresResolverTest, BadOptionsAreRefusedAtCreate) {
  CaresResolver::Options o;
  o.servers = "not an address!";
  EXPECT_FALSE(CaresResolver::Create(o).ok());
  CaresResolver::Options bad_override;
  bad_override.host_overrides["x.test"] = {"300.1.1.1"};
  absl::StatusOr<std::unique_ptr<CaresResolver>> r = CaresResolver::Create(bad_override);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("x.test"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace keyverifier::net
