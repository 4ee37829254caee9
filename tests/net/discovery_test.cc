// ServerDiscovery over scripted DNS and .well-known (the fakes answer
// inline; ResolveAndWait waits for the callback).
#include "service/net/discovery.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_net.h"
#include "tests/testing/server_name.h"

namespace keyverifier::net {
namespace {

using ::keyverifier::testing::Name;

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
    return discovery_.ResolveAndWait(Name(name), absl::InfiniteFuture());
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

// A full .well-known cache sheds its least recently used entries (1% of
// the bound at a time), not everything: a host asked for all along keeps
// its cached answer through a flood of new names.
TEST_F(DiscoveryTest, FullWellKnownCacheShedsTheLeastRecentlyUsed) {
  ServerDiscovery::Options o;
  o.max_cached_hosts = 100;
  ServerDiscovery discovery(resolver_, well_known_, filter_, clock_, o);
  auto resolve = [&](const std::string& name) {
    return discovery.ResolveAndWait(Name(name), absl::InfiniteFuture());
  };
  resolver_.AddHost("matrix.example.net", {"8.8.4.4"});
  well_known_.Set("hot.example", 200, R"({"m.server": "matrix.example.net:443"})");
  ASSERT_TRUE(resolve("hot.example").ok());
  for (int i = 0; i < 300; ++i) {
    const std::string host = absl::StrCat("flood", i, ".example");
    well_known_.Set(host, 200, R"({"m.server": "matrix.example.net:443"})");
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(resolve(host).ok());
    if (i % 10 == 0) {
      ASSERT_TRUE(resolve("hot.example").ok());  // used all along
    }
  }
  EXPECT_EQ(well_known_.fetches("hot.example"), 1);  // never pushed out
  EXPECT_EQ(well_known_.fetches("flood299.example"), 1);
  ASSERT_TRUE(resolve("flood299.example").ok());  // recent: still cached
  EXPECT_EQ(well_known_.fetches("flood299.example"), 1);
  ASSERT_TRUE(resolve("flood0.example").ok());  // long unused: asked again
  EXPECT_EQ(well_known_.fetches("flood0.example"), 2);
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

TEST_F(DiscoveryTest, ResolveAnswersThroughTheCallbackOnce) {
  resolver_.AddHost("example.org", {"93.184.216.34"});
  int calls = 0;
  absl::StatusOr<ResolvedServer> got;
  discovery_.Resolve(Name("example.org:8448"), absl::InfiniteFuture(),
                     [&](absl::StatusOr<ResolvedServer> r) {
                       ++calls;
                       got = std::move(r);
                     });
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Endpoints(*got), std::vector<std::string>{"93.184.216.34:8448"});
  // Errors too (the fake resolver answers inline).
  discovery_.Resolve(Name("nowhere.example:8448"), absl::InfiniteFuture(),
                     [&](absl::StatusOr<ResolvedServer> r) {
                       ++calls;
                       got = std::move(r);
                     });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
}

// Every SRV record's target is looked up; the endpoints follow the SRV
// order (lowest priority first, heavier first within a priority), each
// target's addresses together.
TEST_F(DiscoveryTest, EverySrvTargetIsLookedUpAndTheSrvOrderKept) {
  well_known_.Set("example.org", 404, "not found");
  resolver_.AddSrv("_matrix-fed._tcp.example.org", {{"c.example.org", 8003, 20, 0},
                                                    {"a.example.org", 8001, 10, 1},
                                                    {"b.example.org", 8002, 10, 9}});
  resolver_.AddHost("a.example.org", {"2a00:1::a", "93.184.216.1"});
  resolver_.AddHost("b.example.org", {"93.184.216.2"});
  resolver_.AddHost("c.example.org", {"93.184.216.3", "93.184.216.4"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), (std::vector<std::string>{"93.184.216.2:8002", "[2a00:1::a]:8001",
                                                     "93.184.216.1:8001", "93.184.216.3:8003",
                                                     "93.184.216.4:8003"}));
  std::vector<std::string> lookups = resolver_.lookups();
  std::multiset<std::string> hosts;
  for (const std::string& l : lookups) {
    if (absl::StartsWith(l, "A/AAAA ")) hosts.insert(l);
  }
  EXPECT_EQ(hosts, (std::multiset<std::string>{"A/AAAA a.example.org", "A/AAAA b.example.org",
                                               "A/AAAA c.example.org"}));
  EXPECT_EQ(r->tls_name, "example.org");
}

TEST_F(DiscoveryTest, AnSrvTargetWithoutAddressesIsSkipped) {
  well_known_.Set("example.org", 404, "not found");
  resolver_.AddSrv("_matrix-fed._tcp.example.org",
                   {{"gone.example.org", 8001, 0, 0}, {"b.example.org", 8002, 5, 0}});
  resolver_.AddHost("b.example.org", {"93.184.216.2"});
  absl::StatusOr<ResolvedServer> r = Resolve("example.org");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.2:8002"});

  // None resolving is NotFound, naming the SRV name.
  well_known_.Set("none.org", 404, "not found");
  resolver_.AddSrv("_matrix-fed._tcp.none.org", {{"gone.none.org", 8001, 0, 0}});
  r = Resolve("none.org");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "_matrix-fed._tcp.none.org"))
      << r.status();
}

// A .well-known host that takes `delay` to answer: the fetch fails with
// DeadlineExceeded when the deadline it is given comes first. Records the
// deadlines it was given; FakeWellKnownFetcher still counts every fetch.
class SlowWellKnownFetcher : public FakeWellKnownFetcher {
 public:
  explicit SlowWellKnownFetcher(const Clock& clock) : clock_(clock) {}
  void SetDelay(const std::string& host, absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    delays_[host] = delay;
  }
  std::vector<absl::Time> deadlines(const std::string& host) {
    absl::MutexLock lock(&mu_);
    return deadlines_[host];
  }
  void Fetch(absl::string_view host, absl::Time deadline,
             async::Callback<WellKnownResponse> done) override {
    bool too_slow = false;
    {
      absl::MutexLock lock(&mu_);
      deadlines_[std::string(host)].push_back(deadline);
      auto it = delays_.find(std::string(host));
      too_slow = it != delays_.end() && deadline < clock_.Now() + it->second;
    }
    FakeWellKnownFetcher::Fetch(
        host, deadline,
        [too_slow, host = std::string(host),
         done = std::move(done)](absl::StatusOr<WellKnownResponse> r) mutable {
          if (too_slow) {
            r = absl::DeadlineExceededError("timed out fetching .well-known of " + host);
          }
          done(std::move(r));
        });
  }

 private:
  const Clock& clock_;
  absl::Mutex mu_;
  std::map<std::string, absl::Duration> delays_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<absl::Time>> deadlines_ ABSL_GUARDED_BY(mu_);
};

class WellKnownBudgetTest : public ::testing::Test {
 protected:
  WellKnownBudgetTest()
      : clock_(absl::FromUnixSeconds(1700000000)),
        well_known_(clock_),
        filter_(*IpFilter::Create({})),
        discovery_(resolver_, well_known_, filter_, clock_, Options()) {
    well_known_.Set("example.org", 200, R"({"m.server": "m.example.org:443"})", "max-age=600");
    resolver_.AddHost("m.example.org", {"93.184.216.80"});
    resolver_.AddHost("example.org", {"93.184.216.81"});
  }
  static ServerDiscovery::Options Options() {
    ServerDiscovery::Options o;
    o.well_known_timeout = absl::Seconds(10);
    return o;
  }

  FakeClock clock_;
  FakeResolver resolver_;
  SlowWellKnownFetcher well_known_;
  IpFilter filter_;
  ServerDiscovery discovery_;
};

// The caller's deadline (1 s) is shorter than the .well-known budget (10 s)
// and the host needs 5 s: the lookup is cut short by the caller, which says
// nothing about the host. Not cached: the next resolution asks again and,
// with time enough, gets the delegation.
TEST_F(WellKnownBudgetTest, CutShortByTheCallersDeadlineIsNotCached) {
  well_known_.SetDelay("example.org", absl::Seconds(5));
  const absl::Time soon = clock_.Now() + absl::Seconds(1);
  absl::StatusOr<ResolvedServer> r = discovery_.ResolveAndWait(Name("example.org"), soon);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_EQ(well_known_.fetches("example.org"), 1);
  EXPECT_EQ(well_known_.deadlines("example.org"), std::vector<absl::Time>{soon});

  r = discovery_.ResolveAndWait(Name("example.org"), clock_.Now() + absl::Seconds(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_EQ(well_known_.fetches("example.org"), 2);  // asked again: nothing cached

  r = discovery_.ResolveAndWait(Name("example.org"), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(well_known_.fetches("example.org"), 3);
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.80:443"});
  EXPECT_EQ(r->tls_name, "m.example.org");
}

// With the caller's deadline far away, the host's own 10 s budget is what
// ran out (it needs 20 s): a failure of the host, cached and backed off;
// the resolution goes on without delegation.
TEST_F(WellKnownBudgetTest, TheHostsOwnBudgetRunningOutIsCachedAndBackedOff) {
  well_known_.SetDelay("example.org", absl::Seconds(20));
  absl::StatusOr<ResolvedServer> r =
      discovery_.ResolveAndWait(Name("example.org"), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.81:8448"});
  EXPECT_EQ(r->tls_name, "example.org");
  EXPECT_TRUE(absl::StrContains(r->route, "no well-known")) << r->route;
  EXPECT_EQ(well_known_.deadlines("example.org"),
            std::vector<absl::Time>{clock_.Now() + absl::Seconds(10)});

  // Backed off: not asked again for 2 minutes, even with a short deadline.
  clock_.Advance(absl::Minutes(1));
  r = discovery_.ResolveAndWait(Name("example.org"), clock_.Now() + absl::Seconds(1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(well_known_.fetches("example.org"), 1);
  EXPECT_TRUE(absl::StrContains(r->route, "cached")) << r->route;

  // Once the backoff ends it is asked again, and a host now fast enough
  // delegates.
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));
  well_known_.SetDelay("example.org", absl::Seconds(1));
  r = discovery_.ResolveAndWait(Name("example.org"), absl::InfiniteFuture());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(well_known_.fetches("example.org"), 2);
  EXPECT_EQ(Endpoints(*r), std::vector<std::string>{"93.184.216.80:443"});
}

// A caller deadline later than the budget: the budget is the fetch's
// deadline, and running out of it is the host's failure even though the
// caller would have waited longer.
TEST_F(WellKnownBudgetTest, TheFetchGetsTheEarlierOfBudgetAndCallerDeadline) {
  const absl::Time start = clock_.Now();
  ASSERT_TRUE(discovery_.ResolveAndWait(Name("example.org"), start + absl::Minutes(5)).ok());
  clock_.Advance(absl::Seconds(601));  // the delegation expires
  ASSERT_TRUE(discovery_.ResolveAndWait(Name("example.org"), clock_.Now() + absl::Seconds(3)).ok());
  EXPECT_EQ(well_known_.deadlines("example.org"),
            (std::vector<absl::Time>{start + absl::Seconds(10),
                                     start + absl::Seconds(601) + absl::Seconds(3)}));

  well_known_.SetDelay("slow.example", absl::Seconds(30));
  resolver_.AddHost("slow.example", {"93.184.216.82"});
  ASSERT_TRUE(
      discovery_.ResolveAndWait(Name("slow.example"), clock_.Now() + absl::Minutes(5)).ok());
  ASSERT_TRUE(
      discovery_.ResolveAndWait(Name("slow.example"), clock_.Now() + absl::Minutes(5)).ok());
  EXPECT_EQ(well_known_.fetches("slow.example"), 1);  // the failure was cached
}

// Shutdown (CancelledError) says nothing about the host either.
class CancellingWellKnownFetcher : public FakeWellKnownFetcher {
 public:
  void Fetch(absl::string_view host, absl::Time deadline,
             async::Callback<WellKnownResponse> done) override {
    FakeWellKnownFetcher::Fetch(
        host, deadline, [done = std::move(done)](absl::StatusOr<WellKnownResponse>) mutable {
          done(absl::CancelledError("engine stopped"));
        });
  }
};

TEST(WellKnownCancelTest, CancelledIsNotCached) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  FakeResolver resolver;
  resolver.AddHost("example.org", {"93.184.216.81"});
  CancellingWellKnownFetcher well_known;
  IpFilter filter = *IpFilter::Create({});
  ServerDiscovery discovery(resolver, well_known, filter, clock, {});
  absl::StatusOr<ResolvedServer> r =
      discovery.ResolveAndWait(Name("example.org"), absl::InfiniteFuture());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  r = discovery.ResolveAndWait(Name("example.org"), absl::InfiniteFuture());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_EQ(well_known.fetches("example.org"), 2);
}

}  // namespace
}  // namespace keyverifier::net
