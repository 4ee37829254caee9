#include "service/net/discovery.h"

#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_net.h"

namespace keyverifier::net {
namespace {

using testing::FakeClock;
using testing::FakeResolver;
using testing::FakeWellKnownFetcher;

std::vector<std::string> Endpoints(const ResolvedServer& r) {
  std::vector<std::string> out;
  for (const Endpoint& e : r.endpoints) out.push_back(e.ToString());
  return out;
}

class DiscoveryTest : public ::testing::Test {
 protected:
  DiscoveryTest()
      : clock_(absl::FromUnixSeconds(1700000000)),
        filter_(*IpFilter::Create({})),
        discovery_(resolver_, well_known_, filter_, clock_, {}) {}

  absl::StatusOr<ResolvedServer> Resolve(const std::string& name) {
    return discovery_.Resolve(name, absl::InfiniteFuture());
  }

  FakeClock clock_;
  FakeResolver resolver_;
  FakeWellKnownFetcher well_known_;
  IpFilter filter_;
  ServerDiscovery discovery_;
};

TEST_F(DiscoveryTest, IpLiteralUsesTheAddressWithoutSni) {
  absl::StatusOr<ResolvedServer> r = Resolve("198.51.100.0");  // denied: documentation
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  r = Resolve("8.8.4.4");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"8.8.4.4:8448"});
  EXPECT_EQ(r->host_header, "8.8.4.4");
  EXPECT_EQ(r->tls_name, "8.8.4.4");
  EXPECT_FALSE(r->send_sni);
  r = Resolve("[2a00:1450::5]:8080");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"[2a00:1450::5]:8080"});
  EXPECT_EQ(r->host_header, "[2a00:1450::5]:8080");
  EXPECT_EQ(r->tls_name, "2a00:1450::5");
  EXPECT_TRUE(resolver_.lookups().empty());
  EXPECT_EQ(well_known_.fetches("8.8.4.4"), 0);
}

TEST_F(DiscoveryTest, ExplicitPortSkipsWellKnownAndSrv) {
  resolver_.AddHost("example.org", {"2a00:1::1", "93.184.216.34"});
  absl::StatusOr<ResolvedServer> r = Resolve("Example.org:8449");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r),
            (std::vector<std::string>{"[2a00:1::1]:8449", "93.184.216.34:8449"}));
  EXPECT_EQ(r->host_header, "Example.org:8449");
  EXPECT_EQ(r->tls_name, "example.org");
  EXPECT_TRUE(r->send_sni);
  EXPECT_EQ(well_known_.fetches("example.org"), 0);
  EXPECT_EQ(resolver_.lookups(), std::vector<std::string>{"A/AAAA example.org"});
}

TEST_F(DiscoveryTest, WellKnownDelegationWithPort) {
  well_known_.Set("example.org", 200, R"({"m.server": "matrix.example.net:443"})");
  resolver_.AddHost("matrix.example.net", {"93.184.216.40"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.40:443"});
  EXPECT_EQ(r->host_header, "matrix.example.net:443");
  EXPECT_EQ(r->tls_name, "matrix.example.net");
  EXPECT_EQ(r->route, "well-known -> matrix.example.net:443");
}

TEST_F(DiscoveryTest, WellKnownDelegationToIpLiteral) {
  well_known_.Set("example.org", 200, R"({"m.server": "93.184.216.41"})");
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.41:8448"});
  EXPECT_EQ(r->host_header, "93.184.216.41");
  EXPECT_EQ(r->tls_name, "93.184.216.41");
  EXPECT_FALSE(r->send_sni);
}

TEST_F(DiscoveryTest, DelegatedNameWithSrvKeepsTheDelegatedNameForTls) {
  well_known_.Set("example.org", 200, R"({"m.server": "Delegate.example.net"})");
  resolver_.AddSrv("_matrix-fed._tcp.delegate.example.net",
                   {{"b.target.example", 8500, 10, 5}, {"a.target.example", 8400, 5, 0}});
  resolver_.AddHost("a.target.example", {"93.184.216.50"});
  resolver_.AddHost("b.target.example", {"93.184.216.51"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r),
            (std::vector<std::string>{"93.184.216.50:8400", "93.184.216.51:8500"}));
  EXPECT_EQ(r->host_header, "delegate.example.net");
  EXPECT_EQ(r->tls_name, "delegate.example.net");  // never the SRV target
}

TEST_F(DiscoveryTest, DelegatedNameFallsBackToDeprecatedSrvThenPort8448) {
  well_known_.Set("example.org", 200, R"({"m.server": "d.example.net"})");
  resolver_.AddSrv("_matrix._tcp.d.example.net", {{"t.example", 9000, 0, 0}});
  resolver_.AddHost("t.example", {"93.184.216.52"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.52:9000"});

  well_known_.Set("other.org", 200, R"({"m.server": "plain.example.net"})");
  resolver_.AddHost("plain.example.net", {"93.184.216.53"});
  r = Resolve("other.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.53:8448"});
  EXPECT_EQ(r->host_header, "plain.example.net");
  EXPECT_EQ(r->tls_name, "plain.example.net");
}

TEST_F(DiscoveryTest, NoWellKnownUsesSrvOfTheServerName) {
  well_known_.Set("example.org", 404, "not found");
  resolver_.AddSrv("_matrix-fed._tcp.example.org", {{"fed.example.org", 8443, 0, 0}});
  resolver_.AddHost("fed.example.org", {"93.184.216.60"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.60:8443"});
  EXPECT_EQ(r->host_header, "example.org");
  EXPECT_EQ(r->tls_name, "example.org");
  EXPECT_NE(r->route.find("HTTP 404"), std::string::npos) << r->route;
}

// _matrix-fed._tcp comes first (spec steps 4 before 5); the deprecated
// _matrix._tcp is asked only when it has no record.
TEST_F(DiscoveryTest, MatrixFedSrvWinsOverTheDeprecatedOne) {
  well_known_.Set("example.org", 404, "not found");
  resolver_.AddSrv("_matrix-fed._tcp.example.org", {{"fed.example.org", 8443, 0, 0}});
  resolver_.AddSrv("_matrix._tcp.example.org", {{"old.example.org", 8444, 0, 0}});
  resolver_.AddHost("fed.example.org", {"93.184.216.60"});
  resolver_.AddHost("old.example.org", {"93.184.216.62"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.60:8443"});
  EXPECT_EQ(resolver_.lookups(), (std::vector<std::string>{"SRV _matrix-fed._tcp.example.org",
                                                           "A/AAAA fed.example.org"}));

  well_known_.Set("other.org", 404, "not found");
  resolver_.AddSrv("_matrix._tcp.other.org", {{"old.other.org", 8445, 0, 0}});
  resolver_.AddHost("old.other.org", {"93.184.216.63"});
  r = Resolve("other.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.63:8445"});
  EXPECT_EQ(r->host_header, "other.org");
  EXPECT_EQ(r->tls_name, "other.org");  // never the SRV target
}

TEST_F(DiscoveryTest, InvalidWellKnownIsTreatedAsNone) {
  well_known_.Set("example.org", 200, R"({"m.server": "not a name"})");
  resolver_.AddHost("example.org", {"93.184.216.61"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.61:8448"});
  EXPECT_EQ(r->tls_name, "example.org");
}

TEST_F(DiscoveryTest, SrvServiceNotAvailable) {
  resolver_.AddSrv("_matrix-fed._tcp.example.org", {{"", 0, 0, 0}});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(DiscoveryTest, DnsFailureIsUnavailableNotNotFound) {
  resolver_.FailSrv("_matrix-fed._tcp.example.org",
                    absl::UnavailableError("SRV lookup timed out"));
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().message().find("example.org"), std::string::npos);
}

TEST_F(DiscoveryTest, DeniedAddressesAreDroppedAndAllDeniedIsRefused) {
  resolver_.AddHost("mixed.example", {"10.0.0.5", "93.184.216.70"});
  absl::StatusOr<ResolvedServer> r = Resolve("mixed.example:8448");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.70:8448"});

  resolver_.AddHost("internal.example", {"127.0.0.1", "::1", "192.168.0.9"});
  r = Resolve("internal.example:8448");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("127.0.0.1 is in denied network 127.0.0.0/8"),
            std::string::npos)
      << r.status();
}

TEST_F(DiscoveryTest, WellKnownIsCachedPerCacheControl) {
  well_known_.Set("example.org", 200, R"({"m.server": "m.example.org:443"})",
                  "max-age=600");
  resolver_.AddHost("m.example.org", {"93.184.216.80"});
  ASSERT_TRUE(Resolve("example.org").ok());
  ASSERT_TRUE(Resolve("example.org").ok());
  EXPECT_EQ(well_known_.fetches("example.org"), 1);
  clock_.Advance(absl::Seconds(601));
  ASSERT_TRUE(Resolve("example.org").ok());
  EXPECT_EQ(well_known_.fetches("example.org"), 2);
}

TEST_F(DiscoveryTest, WellKnownFailuresBackOffExponentially) {
  resolver_.AddHost("down.example", {"93.184.216.90"});
  ASSERT_TRUE(Resolve("down.example").ok());  // no .well-known: port 8448
  EXPECT_EQ(well_known_.fetches("down.example"), 1);
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(Resolve("down.example").ok());
  EXPECT_EQ(well_known_.fetches("down.example"), 1);  // cached failure
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));
  ASSERT_TRUE(Resolve("down.example").ok());
  EXPECT_EQ(well_known_.fetches("down.example"), 2);  // after 2 minutes
  clock_.Advance(absl::Minutes(3));
  ASSERT_TRUE(Resolve("down.example").ok());
  EXPECT_EQ(well_known_.fetches("down.example"), 2);  // now 4 minutes
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));
  ASSERT_TRUE(Resolve("down.example").ok());
  EXPECT_EQ(well_known_.fetches("down.example"), 3);
  // Capped at an hour however often it fails.
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(absl::Hours(1) + absl::Seconds(1));
    ASSERT_TRUE(Resolve("down.example").ok());
  }
  EXPECT_EQ(well_known_.fetches("down.example"), 13);
  // A delegation appearing is picked up once the backoff ends.
  well_known_.Set("down.example", 200, R"({"m.server": "93.184.216.91:443"})");
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  absl::StatusOr<ResolvedServer> r = Resolve("down.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.91:443"});
}

TEST_F(DiscoveryTest, MalformedServerNameIsInvalidArgument) {
  EXPECT_EQ(Resolve("bad name").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Resolve("").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keyverifier::net
