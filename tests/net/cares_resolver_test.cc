// CaresResolver against a real dnsmasq on loopback.
#include "service/net/cares_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

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
                      "v6only.example.test,fd00::1",
                      "mapped.example.test,::ffff:127.0.0.13",
                      "both.example.test,127.0.0.14,::ffff:127.0.0.14",
                      // Names under a search domain, for SearchDomainsAreNotApplied.
                      "absolute.example.test,127.0.0.21",
                      "absolute.example.test.cluster.example.test,127.0.0.22",
                      "searchonly.example.test.cluster.example.test,127.0.0.23"};
    r.srv_hosts.push_back(
        "_matrix-fed._tcp.absolute.example.test.cluster.example.test,t1.example.test,8449");
    r.cnames = {"alias.example.test,t2.example.test"};
    absl::StatusOr<std::unique_ptr<Dnsmasq>> d = Dnsmasq::Start(r);
    ASSERT_TRUE(d.ok()) << d.status();
    dns_ = d->release();
  }
  static void TearDownTestSuite() {
    delete dns_;
    dns_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(dns_, nullptr);
    engine_ = *FetchEngine::Create({});
  }

  std::unique_ptr<CaresResolver> Make(CaresResolver::Options o = {}) {
    o.servers = dns_->server();
    absl::StatusOr<std::unique_ptr<CaresResolver>> r = CaresResolver::Create(*engine_, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }
  static absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

  static Dnsmasq* dns_;
  std::unique_ptr<FetchEngine> engine_;
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
      r->LookupSrvAndWait("_matrix-fed._tcp.srv.example.test", Soon());
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
      r->LookupSrvAndWait("_matrix-fed._tcp.none.example.test", Soon());
  EXPECT_EQ(srv.status().code(), absl::StatusCode::kNotFound) << srv.status();
  EXPECT_NE(srv.status().message().find("_matrix-fed._tcp.none.example.test"),
            std::string::npos);
}

TEST_F(CaresResolverTest, HostGivesIpv6ThenIpv4) {
  auto r = Make();
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHostAndWait("t1.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), (std::vector<std::string>{"::11", "127.0.0.11"}));
  a = r->LookupHostAndWait("v6only.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), std::vector<std::string>{"fd00::1"});
}

// An AAAA record ::ffff:a.b.c.d reaches the IPv4 host a.b.c.d: it comes
// back as that IPv4 address, so the address filter's IPv4 rules judge it.
TEST_F(CaresResolverTest, MappedAaaaIsIpv4) {
  auto r = Make();
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHostAndWait("mapped.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->size(), 1u);
  EXPECT_TRUE((*a)[0].v4);
  EXPECT_EQ((*a)[0].ToString(), "127.0.0.13");
  EXPECT_EQ((*a)[0], *ParseIpAddress("127.0.0.13"));
  // The same host by A and by mapped AAAA is one address.
  a = r->LookupHostAndWait("both.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), std::vector<std::string>{"127.0.0.14"});
}

// Federation names are absolute: a resolv.conf with a search domain and
// ndots:5 (as Kubernetes writes it) must not make the resolver ask
// <name>.<search domain> first, nor at all.
TEST_F(CaresResolverTest, SearchDomainsAreNotApplied) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/resolv.conf");
  {
    std::ofstream conf(path, std::ios::trunc);
    conf << "search cluster.example.test\noptions ndots:5\n";
    ASSERT_TRUE(conf.good());
  }
  CaresResolver::Options o;
  o.resolv_conf = path;
  auto r = Make(o);
  absl::StatusOr<std::vector<IpAddress>> a =
      r->LookupHostAndWait("absolute.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), std::vector<std::string>{"127.0.0.21"});
  // Only the name under the search domain exists: not found.
  a = r->LookupHostAndWait("searchonly.example.test", Soon());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound) << a.status();
  absl::StatusOr<std::vector<SrvRecord>> srv =
      r->LookupSrvAndWait("_matrix-fed._tcp.absolute.example.test", Soon());
  EXPECT_EQ(srv.status().code(), absl::StatusCode::kNotFound) << srv.status();
}

TEST_F(CaresResolverTest, CnameIsFollowed) {
  auto r = Make();
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHostAndWait("alias.example.test", Soon());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), std::vector<std::string>{"127.0.0.12"});
}

TEST_F(CaresResolverTest, CnamesAreReportedForAnAliasOnly) {
  auto r = Make();
  absl::StatusOr<std::vector<std::string>> chain = async::Wait<std::vector<std::string>>(
      [&](auto cb) { r->LookupCnames("alias.example.test", Soon(), std::move(cb)); });
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ(*chain, std::vector<std::string>{"alias.example.test -> t2.example.test"});
  absl::StatusOr<std::vector<std::string>> none = async::Wait<std::vector<std::string>>(
      [&](auto cb) { r->LookupCnames("t2.example.test", Soon(), std::move(cb)); });
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  absl::StatusOr<std::vector<std::string>> missing = async::Wait<std::vector<std::string>>(
      [&](auto cb) { r->LookupCnames("nope.example.test", Soon(), std::move(cb)); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

TEST_F(CaresResolverTest, UnknownHostIsNotFound) {
  auto r = Make();
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHostAndWait("nope.example.test", Soon());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound) << a.status();
}

TEST_F(CaresResolverTest, OverridesAnswerWithoutDns) {
  CaresResolver::Options o;
  o.host_overrides["Pinned.Example.Test"] = {"192.0.2.7", "2001:db8::7"};
  auto r = Make(o);
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHostAndWait("pinned.example.test", Soon());
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
  auto r = *CaresResolver::Create(*engine_, o);
  absl::StatusOr<std::vector<IpAddress>> a = r->LookupHostAndWait("t1.example.test", Soon());
  EXPECT_TRUE(absl::IsUnavailable(a.status())) << a.status();
  // The caller's deadline wins over c-ares' own timeouts.
  o.query_timeout = absl::Seconds(5);
  r = *CaresResolver::Create(*engine_, o);
  a = r->LookupHostAndWait("t1.example.test", absl::Now() + absl::Milliseconds(50));
  EXPECT_TRUE(absl::IsDeadlineExceeded(a.status()) || absl::IsUnavailable(a.status()))
      << a.status();
}

TEST_F(CaresResolverTest, BadOptionsAreRefusedAtCreate) {
  CaresResolver::Options o;
  o.servers = "not an address!";
  EXPECT_FALSE(CaresResolver::Create(*engine_, o).ok());
  CaresResolver::Options bad_override;
  bad_override.host_overrides["x.test"] = {"300.1.1.1"};
  absl::StatusOr<std::unique_ptr<CaresResolver>> r = CaresResolver::Create(*engine_, bad_override);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("x.test"), std::string::npos) << r.status();
}

// A DNS server that takes every query and never answers: a bound UDP port
// nobody reads (no "port unreachable" either, so c-ares waits).
class SilentDnsServer {
 public:
  SilentDnsServer() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "silent DNS server: " << std::strerror(errno);
    }
    port_ = ntohs(a.sin_port);
  }
  ~SilentDnsServer() {
    if (fd_ >= 0) close(fd_);
  }
  std::string server() const { return absl::StrCat("127.0.0.1:", port_); }
  // Queries received since the last call (read and dropped).
  int TakeQueries() {
    int n = 0;
    char buf[1500];
    while (recv(fd_, buf, sizeof buf, MSG_DONTWAIT) >= 0) ++n;
    return n;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Answers of many lookups, each counted by index.
class LookupAnswers {
 public:
  explicit LookupAnswers(int n) : calls_(n, 0) {}
  template <typename T>
  async::Callback<T> For(int i) {
    return [this, i](absl::StatusOr<T> r) {
      absl::MutexLock lock(&mu_);
      ++calls_[i];
      ++codes_[r.status().code()];
      if (!r.ok() && sample_.empty()) sample_ = r.status().ToString();
    };
  }
  bool AwaitAll(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::all_of(calls_.begin(), calls_.end(), [](int c) { return c > 0; });
    };
    return mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
  }
  int Count(absl::StatusCode code) {
    absl::MutexLock lock(&mu_);
    return codes_[code];
  }
  std::vector<int> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::string sample() {
    absl::MutexLock lock(&mu_);
    return sample_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> calls_ ABSL_GUARDED_BY(mu_);
  std::map<absl::StatusCode, int> codes_ ABSL_GUARDED_BY(mu_);
  std::string sample_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<CaresResolver> SilentResolver(FetchEngine& engine,
                                              const SilentDnsServer& silent) {
  CaresResolver::Options o;
  o.servers = silent.server();
  // Left alone, c-ares would wait 2 x 20 s.
  o.query_timeout = absl::Seconds(20);
  o.tries = 2;
  absl::StatusOr<std::unique_ptr<CaresResolver>> r = CaresResolver::Create(engine, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

TEST_F(CaresResolverTest, DeadlineIsEnforcedAgainstASilentServer) {
  SilentDnsServer silent;
  auto r = SilentResolver(*engine_, silent);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<IpAddress>> a =
      r->LookupHostAndWait("t1.example.test", start + absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(a.status())) << a.status();
  EXPECT_NE(a.status().message().find("address lookup of t1.example.test"), std::string::npos)
      << a.status();
  absl::StatusOr<std::vector<SrvRecord>> srv = r->LookupSrvAndWait(
      "_matrix-fed._tcp.srv.example.test", absl::Now() + absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(srv.status())) << srv.status();
  EXPECT_NE(srv.status().message().find("SRV lookup of _matrix-fed._tcp.srv.example.test"),
            std::string::npos)
      << srv.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Many lookups in flight on the one channel end together at their deadline,
// not one after another; the answers c-ares gives later (here: the
// cancellations when the engine stops) are dropped.
TEST_F(CaresResolverTest, ManyLookupsInFlightEndTogether) {
  SilentDnsServer silent;
  auto r = SilentResolver(*engine_, silent);
  constexpr int kLookups = 100;
  LookupAnswers answers(kLookups);
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(1);
  for (int i = 0; i < kLookups; ++i) {
    if (i % 2 == 0) {
      r->LookupHost(absl::StrCat("h", i, ".example.test"), deadline,
                    answers.For<std::vector<IpAddress>>(i));
    } else {
      r->LookupSrv(absl::StrCat("_matrix-fed._tcp.s", i, ".example.test"), deadline,
                   answers.For<std::vector<SrvRecord>>(i));
    }
  }
  ASSERT_TRUE(answers.AwaitAll(absl::Seconds(60)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(answers.Count(absl::StatusCode::kDeadlineExceeded), kLookups) << answers.sample();
  EXPECT_LT(took, absl::Seconds(8)) << took;  // one after another: 100 s
  engine_->Stop();
  EXPECT_EQ(answers.calls(), std::vector<int>(kLookups, 1));
}

std::unique_ptr<CaresResolver> GatedResolver(FetchEngine& engine, const SilentDnsServer& silent,
                                             int max_in_flight) {
  CaresResolver::Options o;
  o.servers = silent.server();
  o.query_timeout = absl::Seconds(20);
  o.tries = 1;
  o.max_in_flight = max_in_flight;
  absl::StatusOr<std::unique_ptr<CaresResolver>> r = CaresResolver::Create(engine, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

// Concurrent lookups of one name share one query: 20 of an address and 20
// of an SRV record put 3 queries on the wire (A, AAAA, SRV), and every
// caller is answered.
TEST_F(CaresResolverTest, LookupsOfOneNameShareAQuery) {
  SilentDnsServer silent;
  auto r = GatedResolver(*engine_, silent, 128);
  constexpr int kEach = 20;
  LookupAnswers answers(2 * kEach);
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  for (int i = 0; i < kEach; ++i) {
    r->LookupHost("same.example.test", deadline, answers.For<std::vector<IpAddress>>(i));
    r->LookupSrv("_matrix-fed._tcp.same.example.test", deadline,
                 answers.For<std::vector<SrvRecord>>(kEach + i));
  }
  ASSERT_TRUE(answers.AwaitAll(absl::Seconds(60)));
  EXPECT_EQ(answers.Count(absl::StatusCode::kDeadlineExceeded), 2 * kEach) << answers.sample();
  EXPECT_EQ(silent.TakeQueries(), 3);
  // Once answered, the name is asked again.
  EXPECT_FALSE(r->LookupHostAndWait("same.example.test", absl::Now() + absl::Milliseconds(200))
                   .ok());
  EXPECT_EQ(silent.TakeQueries(), 2);
}

// At most max_in_flight queries are out at once; the others wait their turn
// and still end at their own deadline.
TEST_F(CaresResolverTest, QueriesInFlightAreCapped) {
  SilentDnsServer silent;
  auto r = GatedResolver(*engine_, silent, 5);
  constexpr int kLookups = 30;
  LookupAnswers answers(kLookups);
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  for (int i = 0; i < kLookups; ++i) {
    r->LookupSrv(absl::StrCat("_matrix-fed._tcp.s", i, ".example.test"), deadline,
                 answers.For<std::vector<SrvRecord>>(i));
  }
  ASSERT_TRUE(answers.AwaitAll(absl::Seconds(60)));
  EXPECT_EQ(answers.Count(absl::StatusCode::kDeadlineExceeded), kLookups) << answers.sample();
  // The five sent first are still with c-ares (20 s per try): nothing else
  // went out.
  EXPECT_EQ(silent.TakeQueries(), 5);
}

TEST_F(CaresResolverTest, StopAnswersLookupsInFlight) {
  SilentDnsServer silent;
  auto r = SilentResolver(*engine_, silent);
  constexpr int kLookups = 10;
  LookupAnswers answers(kLookups);
  for (int i = 0; i < kLookups; ++i) {
    r->LookupHost(absl::StrCat("h", i, ".example.test"), absl::Now() + absl::Minutes(5),
                  answers.For<std::vector<IpAddress>>(i));
  }
  // Tasks run in order: once this one has, every query is on the channel.
  absl::Notification issued;
  ASSERT_TRUE(engine_->Post([&issued] { issued.Notify(); }));
  ASSERT_TRUE(issued.WaitForNotificationWithTimeout(absl::Seconds(60)));
  const absl::Time stop = absl::Now();
  engine_->Stop();
  EXPECT_LT(absl::Now() - stop, absl::Seconds(5));
  EXPECT_EQ(answers.calls(), std::vector<int>(kLookups, 1));
  EXPECT_EQ(answers.Count(absl::StatusCode::kCancelled), kLookups) << answers.sample();
  // Afterwards a lookup is answered at once.
  absl::StatusOr<std::vector<IpAddress>> a =
      r->LookupHostAndWait("t1.example.test", absl::Now() + absl::Minutes(5));
  EXPECT_TRUE(absl::IsCancelled(a.status())) << a.status();
}

TEST_F(CaresResolverTest, ConcurrentLookupsAreAllAnswered) {
  auto r = Make();
  constexpr int kLookups = 40;
  absl::Mutex mu;
  int good = 0, answered = 0;
  for (int i = 0; i < kLookups; ++i) {
    if (i % 2 == 0) {
      r->LookupHost("t1.example.test", Soon(), [&](absl::StatusOr<std::vector<IpAddress>> a) {
        absl::MutexLock lock(&mu);
        ++answered;
        good += a.ok() && Strings(*a) == std::vector<std::string>{"::11", "127.0.0.11"};
      });
    } else {
      r->LookupSrv("_matrix-fed._tcp.srv.example.test", Soon(),
                   [&](absl::StatusOr<std::vector<SrvRecord>> s) {
                     absl::MutexLock lock(&mu);
                     ++answered;
                     good += s.ok() && s->size() == 2;
                   });
    }
  }
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return answered == kLookups; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60)));
  }
  engine_->Stop();  // no callback still touches the counters
  EXPECT_EQ(answered, kLookups);
  EXPECT_EQ(good, kLookups);
}

}  // namespace
}  // namespace keyverifier::net
