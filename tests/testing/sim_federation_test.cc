// SimFederation against real clients: dig for its DNS, curl for its HTTPS
// servers and notary, raw sockets for its dead port; signatures checked with
// the core.
#include "tests/testing/sim_federation.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "service/core/server_keys.h"

namespace keyverifier::testing {
namespace {

constexpr int kServers = 50;
const std::vector<int> kDead = {45, 46, 47, 48, 49};

struct Output {
  int exit_code = -1;
  std::string text;
};

// Runs `command` in a shell; its stdout and exit code.
Output RunShell(const std::string& command) {
  Output out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.text.append(buf, n);
  int status = pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

struct HttpAnswer {
  int curl_exit = -1;
  int status = 0;
  std::string body;
};

// One HTTPS request with curl, `host` resolved to the sim's https port.
HttpAnswer Curl(const SimFederation& sim, const std::string& host, const std::string& path,
                const std::string& post_body = "", int max_seconds = 60) {
  const std::string authority = absl::StrCat(host, ":", sim.https_port());
  std::string command = absl::StrCat(
      "curl -sS --max-time ", max_seconds, " --cacert ", sim.ca_pem_path(), " --resolve ",
      authority, ":127.0.0.1 -w '\\n%{http_code}' ");
  if (!post_body.empty()) {
    const std::string file = absl::StrCat(sim.dir(), "/post-", getpid(), ".json");
    FILE* f = std::fopen(file.c_str(), "w");
    std::fwrite(post_body.data(), 1, post_body.size(), f);
    std::fclose(f);
    absl::StrAppend(&command, "-H 'Content-Type: application/json' --data-binary @", file, " ");
  }
  absl::StrAppend(&command, "https://", authority, path);
  Output out = RunShell(command);
  HttpAnswer answer;
  answer.curl_exit = out.exit_code;
  const size_t nl = out.text.rfind('\n');
  if (nl != std::string::npos) {
    answer.body = out.text.substr(0, nl);
    (void)absl::SimpleAtoi(out.text.substr(nl + 1), &answer.status);
  }
  return answer;
}

std::string Dig(const SimFederation& sim, const std::string& type, const std::string& name) {
  const std::string port = sim.dns_server().substr(sim.dns_server().rfind(':') + 1);
  return std::string(absl::StripAsciiWhitespace(
      RunShell(absl::StrCat("dig +short +time=5 +tries=3 -p ", port, " @127.0.0.1 ", type, " ", name))
          .text));
}

// A TCP connection to 127.0.0.1:port, or -1.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Polls the sim's counters until `done` holds (the sim counts on its own
// thread of time); the last stats seen.
template <typename Pred>
SimFederation::Stats StatsWhen(SimFederation& sim, Pred done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  SimFederation::Stats stats;
  while (true) {
    absl::StatusOr<SimFederation::Stats> s = sim.GetStats();
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return stats;
    stats = *std::move(s);
    if (done(stats) || absl::Now() > give_up) return stats;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

class SimFederationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SimFederation::Options o;
    o.servers = kServers;
    o.dead = kDead;
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<SimFederation>> sim = SimFederation::Start(o);
    ASSERT_TRUE(sim.ok()) << sim.status();
    std::cout << "[sim] " << kServers << " servers up in " << (absl::Now() - start) << std::endl;
    sim_ = sim->release();
  }
  static void TearDownTestSuite() {
    delete sim_;
    sim_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(sim_, nullptr);
    ASSERT_TRUE(sim_->Configure(R"({"delays": {}, "dead": [45, 46, 47, 48, 49]})").ok());
    ASSERT_TRUE(sim_->Reset().ok());
  }

  static SimFederation* sim_;
};
SimFederation* SimFederationTest::sim_ = nullptr;

TEST_F(SimFederationTest, SrvRecordsLeadToTheLiveAndDeadPorts) {
  const SimFederation& sim = *sim_;
  EXPECT_EQ(Dig(sim, "SRV", "_matrix-fed._tcp.s1.sim.test"),
            absl::StrCat("0 0 ", sim.https_port(), " live.sim.test."));
  EXPECT_EQ(Dig(sim, "SRV", "_matrix-fed._tcp.s44.sim.test"),
            absl::StrCat("0 0 ", sim.https_port(), " live.sim.test."));
  EXPECT_EQ(Dig(sim, "SRV", "_matrix-fed._tcp.s45.sim.test"),
            absl::StrCat("0 0 ", sim.dead_port(), " dead.sim.test."));
  EXPECT_EQ(Dig(sim, "SRV", "_matrix-fed._tcp.notary.sim.test"),
            absl::StrCat("0 0 ", sim.https_port(), " live.sim.test."));
  EXPECT_EQ(Dig(sim, "A", "live.sim.test"), "127.0.0.1");
  EXPECT_EQ(Dig(sim, "A", "dead.sim.test"), "127.0.0.1");
  // Not in the sim, and no A record for the names themselves.
  EXPECT_EQ(Dig(sim, "SRV", "_matrix-fed._tcp.s50.sim.test"), "");
  EXPECT_EQ(Dig(sim, "A", "s1.sim.test"), "");
}

TEST_F(SimFederationTest, ServerKeysVerifyWithTheDeterministicKey) {
  const int64_t before_ms = absl::ToUnixMillis(absl::Now());
  HttpAnswer a = Curl(*sim_, "s1.sim.test", "/_matrix/key/v2/server");
  const int64_t after_ms = absl::ToUnixMillis(absl::Now());
  ASSERT_EQ(a.curl_exit, 0);
  ASSERT_EQ(a.status, 200) << a.body;
  core::ServerKeyExpectations expect;
  expect.server_name = "s1.sim.test";
  absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(a.body, expect);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->verify_keys.size(), 1u);
  EXPECT_EQ(keys->verify_keys[0].key_id, "ed25519:sim");
  EXPECT_EQ(keys->verify_keys[0].public_key,
            SimFederation::SigningKeyOf("s1.sim.test").public_key());
  EXPECT_TRUE(keys->old_verify_keys.empty());
  // now + 1 day, rounded up to the second.
  EXPECT_GE(keys->valid_until_ts, before_ms + 86400000);
  EXPECT_LE(keys->valid_until_ts, after_ms + 86400000 + 1000);

  // Another server's key is another key.
  HttpAnswer b = Curl(*sim_, "s2.sim.test", "/_matrix/key/v2/server");
  absl::StatusOr<core::ServerKeys> other = core::ParseServerKeys(b.body);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->server_name, "s2.sim.test");
  EXPECT_EQ(other->verify_keys[0].public_key,
            SimFederation::SigningKeyOf("s2.sim.test").public_key());
  EXPECT_NE(other->verify_keys[0].public_key, keys->verify_keys[0].public_key);
}

TEST_F(SimFederationTest, UnknownHostsAndPathsAre404) {
  HttpAnswer a = Curl(*sim_, "s50.sim.test", "/_matrix/key/v2/server");
  EXPECT_EQ(a.status, 404);
  EXPECT_NE(a.body.find("M_NOT_FOUND"), std::string::npos) << a.body;
  HttpAnswer b = Curl(*sim_, "s1.sim.test", "/_matrix/federation/v1/nothing");
  EXPECT_EQ(b.status, 404);
  EXPECT_NE(b.body.find("M_UNRECOGNIZED"), std::string::npos) << b.body;
}

TEST_F(SimFederationTest, ServesTheVersionEndpointUnlessToldNot) {
  HttpAnswer a = Curl(*sim_, "s1.sim.test", "/_matrix/federation/v1/version");
  EXPECT_EQ(a.status, 200);
  EXPECT_NE(a.body.find("\"sim_federation\""), std::string::npos) << a.body;
  ASSERT_TRUE(sim_->Configure(R"({"no_version": [1]})").ok());
  HttpAnswer b = Curl(*sim_, "s1.sim.test", "/_matrix/federation/v1/version");
  EXPECT_EQ(b.status, 404);
  ASSERT_TRUE(sim_->Configure(R"({"no_version": []})").ok());
  EXPECT_GT(sim_->alt_port(), 0);
}

TEST_F(SimFederationTest, NotaryBatchVouchesForEveryServerAsked) {
  // s20 ... s49: live and dead ones (45-49); the notary knows them all.
  std::set<std::string> asked;
  std::vector<std::string> entries;
  for (int i = 20; i < 50; ++i) {
    asked.insert(SimFederation::ServerName(i));
    entries.push_back(absl::StrCat("\"", SimFederation::ServerName(i),
                                   "\": {\"ed25519:sim\": {\"minimum_valid_until_ts\": 0}}"));
  }
  const std::string body = absl::StrCat("{\"server_keys\": {", absl::StrJoin(entries, ","), "}}");
  HttpAnswer a = Curl(*sim_, "notary.sim.test", "/_matrix/key/v2/query", body);
  ASSERT_EQ(a.curl_exit, 0);
  ASSERT_EQ(a.status, 200) << a.body;
  const core::PinnedNotary notary = sim_->pinned_notary();
  absl::StatusOr<std::vector<absl::StatusOr<core::ServerKeys>>> answer =
      core::ParseNotaryResponse(a.body, notary);
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->size(), 30u);
  std::set<std::string> got;
  for (const absl::StatusOr<core::ServerKeys>& keys : *answer) {
    ASSERT_TRUE(keys.ok()) << keys.status();
    got.insert(keys->server_name);
    EXPECT_EQ(keys->notaries, std::vector<std::string>{"notary.sim.test"});
    ASSERT_EQ(keys->verify_keys.size(), 1u);
    EXPECT_EQ(keys->verify_keys[0].public_key,
              SimFederation::SigningKeyOf(keys->server_name).public_key());
  }
  EXPECT_EQ(got, asked);

  // Another notary's pin does not verify the entries.
  core::PinnedNotary impostor = notary;
  impostor.keys[0].public_key = SimFederation::SigningKeyOf("s1.sim.test").public_key();
  answer = core::ParseNotaryResponse(a.body, impostor);
  ASSERT_TRUE(answer.ok()) << answer.status();
  for (const absl::StatusOr<core::ServerKeys>& keys : *answer) EXPECT_FALSE(keys.ok());

  // An empty key map asks for all keys; unknown servers are left out.
  HttpAnswer b = Curl(*sim_, "notary.sim.test", "/_matrix/key/v2/query",
                      R"({"server_keys": {"s3.sim.test": {}, "elsewhere.test": {}}})");
  answer = core::ParseNotaryResponse(b.body, notary);
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->size(), 1u);
  ASSERT_TRUE((*answer)[0].ok()) << (*answer)[0].status();
  EXPECT_EQ((*answer)[0]->server_name, "s3.sim.test");

  absl::StatusOr<SimFederation::Stats> stats = sim_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->post_batch_sizes, (std::vector<int64_t>{30, 2}));
  EXPECT_EQ(stats->Requests("notary.sim.test", "/_matrix/key/v2/query"), 2);
}

TEST_F(SimFederationTest, NotaryGetForOneServer) {
  HttpAnswer a = Curl(*sim_, "notary.sim.test", "/_matrix/key/v2/query/s46.sim.test");
  ASSERT_EQ(a.status, 200) << a.body;
  absl::StatusOr<std::vector<absl::StatusOr<core::ServerKeys>>> answer =
      core::ParseNotaryResponse(a.body, sim_->pinned_notary());
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->size(), 1u);
  ASSERT_TRUE((*answer)[0].ok()) << (*answer)[0].status();
  EXPECT_EQ((*answer)[0]->server_name, "s46.sim.test");

  // The notary's own keys are the pinned ones.
  HttpAnswer own = Curl(*sim_, "notary.sim.test", "/_matrix/key/v2/server");
  absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(own.body);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->verify_keys[0].public_key, sim_->pinned_notary().keys[0].public_key);
  EXPECT_NE(own.body.find(SimFederation::PublicKeyBase64("notary.sim.test")), std::string::npos);

  absl::StatusOr<SimFederation::Stats> stats = sim_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->Requests("notary.sim.test", "/_matrix/key/v2/query/s46.sim.test"), 1);
  EXPECT_TRUE(stats->post_batch_sizes.empty());
}

TEST_F(SimFederationTest, DeadPortAcceptsAndNeverAnswers) {
  int fds[3];
  for (int& fd : fds) {
    fd = Connect(sim_->dead_port());
    ASSERT_GE(fd, 0);
  }
  // Something sent is never read, nothing ever comes back.
  ASSERT_EQ(send(fds[0], "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL), 18);
  pollfd p[3];
  for (int i = 0; i < 3; ++i) p[i] = {fds[i], POLLIN, 0};
  EXPECT_EQ(poll(p, 3, 1000), 0);

  SimFederation::Stats open =
      StatsWhen(*sim_, [](const SimFederation::Stats& s) { return s.open_dead_connections == 3; });
  EXPECT_EQ(open.open_dead_connections, 3);
  EXPECT_EQ(open.peak_dead_connections, 3);
  EXPECT_EQ(open.accepted_dead_connections, 3);
  for (int fd : fds) close(fd);
  SimFederation::Stats closed =
      StatsWhen(*sim_, [](const SimFederation::Stats& s) { return s.open_dead_connections == 0; });
  EXPECT_EQ(closed.open_dead_connections, 0);
  EXPECT_EQ(closed.peak_dead_connections, 3);
}

TEST_F(SimFederationTest, CountsRequestsAndConcurrentConnections) {
  // One after the other: each connection is seen closed before the next.
  auto all_closed = [](const SimFederation::Stats& s) { return s.open_https_connections == 0; };
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Curl(*sim_, "s5.sim.test", "/_matrix/key/v2/server").status, 200);
    StatsWhen(*sim_, all_closed);
  }
  EXPECT_EQ(Curl(*sim_, "s6.sim.test", "/_matrix/key/v2/server").status, 200);

  // Four requests to s7 at once, each held for two seconds: four connections
  // open together.
  ASSERT_TRUE(sim_->Configure(R"({"delays": {"s7.sim.test": 2000}})").ok());
  const std::string authority = absl::StrCat("s7.sim.test:", sim_->https_port());
  const std::string url = absl::StrCat("https://", authority, "/_matrix/key/v2/server");
  const absl::Time start = absl::Now();
  Output out = RunShell(absl::StrCat("curl -sS --no-progress-meter --max-time 60 --parallel --parallel-immediate "
                                "--parallel-max 10 --cacert ", sim_->ca_pem_path(),
                                " --resolve ", authority, ":127.0.0.1 -o /dev/null -o /dev/null"
                                " -o /dev/null -o /dev/null ", url, " ", url, " ", url, " ", url));
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_GE(absl::Now() - start, absl::Seconds(2));

  SimFederation::Stats s = StatsWhen(*sim_, all_closed);
  EXPECT_EQ(s.Requests("s5.sim.test", "/_matrix/key/v2/server"), 3);
  EXPECT_EQ(s.Requests("s6.sim.test", "/_matrix/key/v2/server"), 1);
  EXPECT_EQ(s.Requests("s7.sim.test", "/_matrix/key/v2/server"), 4);
  EXPECT_EQ(s.RequestsTo("/_matrix/key/v2/server"), 8);
  EXPECT_EQ(s.PeakConnectionsTo("s5.sim.test"), 1);
  EXPECT_EQ(s.PeakConnectionsTo("s7.sim.test"), 4);
  EXPECT_GE(s.peak_https_connections, 4);
  EXPECT_GE(s.peak_connections, 4);
  EXPECT_EQ(s.peak_requests_in_flight, 4);
  EXPECT_EQ(s.requests_in_flight, 0);
  EXPECT_EQ(s.accepted_https_connections, 8);
  EXPECT_EQ(s.open_connections, 0);
  EXPECT_TRUE(s.open_connections_by_host.empty());

  ASSERT_TRUE(sim_->Reset().ok());
  absl::StatusOr<SimFederation::Stats> zero = sim_->GetStats();
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->requests.empty());
  EXPECT_EQ(zero->peak_https_connections, 0);
  EXPECT_EQ(zero->accepted_https_connections, 0);
}

TEST_F(SimFederationTest, ConfigureDelaysAndKillsServersAtRunTime) {
  ASSERT_TRUE(sim_->Configure(R"({"delays": {"s8.sim.test": 1000}})").ok());
  absl::Time start = absl::Now();
  EXPECT_EQ(Curl(*sim_, "s8.sim.test", "/_matrix/key/v2/server").status, 200);
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));

  // A server made dead is stalled on the https port before the handshake.
  ASSERT_TRUE(sim_->Configure(R"({"dead": [9, "s45.sim.test"]})").ok());
  HttpAnswer a = Curl(*sim_, "s9.sim.test", "/_matrix/key/v2/server", "", /*max_seconds=*/2);
  EXPECT_EQ(a.curl_exit, 28);  // timed out
  SimFederation::Stats s = StatsWhen(
      *sim_, [](const SimFederation::Stats& s) { return s.open_https_connections == 0; });
  EXPECT_EQ(s.Requests("s9.sim.test", "/_matrix/key/v2/server"), 0);
  EXPECT_EQ(s.PeakConnectionsTo("s9.sim.test"), 1);

  EXPECT_FALSE(sim_->Configure(R"({"dead": [50]})").ok());
  EXPECT_FALSE(sim_->Configure(R"({"speed": 1})").ok());
}

// Where a GET of `path` at `host` redirects to ("302 https://..."), by curl.
std::string RedirectOf(const SimFederation& sim, const std::string& host, const std::string& path) {
  const std::string authority = absl::StrCat(host, ":", sim.https_port());
  return RunShell(absl::StrCat("curl -sS --max-time 30 --cacert ", sim.ca_pem_path(),
                               " --resolve ", authority, ":127.0.0.1 -o /dev/null",
                               " -w '%{http_code} %{redirect_url}' https://", authority, path))
      .text;
}

TEST(SimFederationWellKnownTest, ServesHonestAndHostileWellKnown) {
  SimFederation::Options o;
  o.servers = 4;
  o.well_known = {1, 2};
  absl::StatusOr<std::unique_ptr<SimFederation>> started = SimFederation::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  SimFederation& sim = **started;
  const std::string port = absl::StrCat(sim.https_port());
  const std::string wk = "/.well-known/matrix/server";
  // A records: the chosen servers and their m- and loop- names; others none.
  for (const char* host : {"s1.sim.test", "m-s1.sim.test", "loop-s2.sim.test"}) {
    EXPECT_EQ(Dig(sim, "A", host), "127.0.0.1") << host;
  }
  EXPECT_EQ(Dig(sim, "A", "s0.sim.test"), "");
  EXPECT_EQ(Dig(sim, "A", "metadata.sim.test"), "169.254.169.254");
  EXPECT_EQ(Dig(sim, "A", "private.sim.test"), "10.0.0.1");
  EXPECT_EQ(Dig(sim, "SRV", "_matrix-fed._tcp.s1.sim.test"),
            absl::StrCat("0 0 ", port, " live.sim.test."));
  // No mode yet: 404, as before.
  EXPECT_EQ(Curl(sim, "s1.sim.test", wk).status, 404);

  ASSERT_TRUE(sim.Configure(R"({"well_known": {"1": "delegate", "2": "loop"}})").ok());
  HttpAnswer a = Curl(sim, "s1.sim.test", wk);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, absl::StrCat(R"({"m.server": "m-s1.sim.test:)", port, R"("})"));
  // The delegation target serves the server's keys.
  absl::StatusOr<core::ServerKeys> keys =
      core::ParseServerKeys(Curl(sim, "m-s1.sim.test", "/_matrix/key/v2/server").body);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->server_name, "s1.sim.test");
  EXPECT_EQ(RedirectOf(sim, "s2.sim.test", wk),
            absl::StrCat("302 https://loop-s2.sim.test:", port, wk));
  EXPECT_EQ(RedirectOf(sim, "loop-s2.sim.test", wk),
            absl::StrCat("302 https://s2.sim.test:", port, wk));

  ASSERT_TRUE(sim.Configure(
      R"({"well_known": {"1": "chain", "2": "redirect_metadata"}})").ok());
  EXPECT_EQ(RedirectOf(sim, "s1.sim.test", wk), absl::StrCat("302 https://s1.sim.test:", port, "/hop/1"));
  EXPECT_EQ(RedirectOf(sim, "s1.sim.test", "/hop/7"),
            absl::StrCat("302 https://s1.sim.test:", port, "/hop/8"));
  EXPECT_EQ(RedirectOf(sim, "s2.sim.test", wk),
            absl::StrCat("302 https://metadata.sim.test:", port, wk));
  ASSERT_TRUE(sim.Configure(R"({"well_known": {"1": "redirect_ip", "2": "delegate_internal"}})").ok());
  EXPECT_EQ(RedirectOf(sim, "s1.sim.test", wk), absl::StrCat("302 https://10.0.0.1:", port, wk));
  EXPECT_EQ(Curl(sim, "s2.sim.test", wk).body,
            absl::StrCat(R"({"m.server": "metadata.sim.test:)", port, R"("})"));

  ASSERT_TRUE(sim.Configure(R"({"well_known": {"1": "oversized", "2": "slow"}})").ok());
  EXPECT_GT(Curl(sim, "s1.sim.test", wk).body.size(), size_t{1} << 20);
  // One byte a second: two seconds give the first byte or two, not all.
  HttpAnswer slow = Curl(sim, "s2.sim.test", wk, "", 2);
  EXPECT_EQ(slow.curl_exit, 28);  // timed out
  EXPECT_LT(slow.body.size(), 5u);

  absl::StatusOr<SimFederation::Stats> stats = sim.GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->Requests("s1.sim.test", wk), 5);
  EXPECT_EQ(stats->Requests("s1.sim.test", "/hop/7"), 1);
  EXPECT_EQ(stats->Requests("loop-s2.sim.test", wk), 1);
  EXPECT_EQ(stats->Requests("m-s1.sim.test", "/_matrix/key/v2/server"), 1);

  // Only servers with A records, only known modes.
  EXPECT_FALSE(sim.Configure(R"({"well_known": {"0": "delegate"}})").ok());
  EXPECT_FALSE(sim.Configure(R"({"well_known": {"1": "teleport"}})").ok());
}

TEST(SimFederationScaleTest, ThousandsOfServersStartQuickly) {
  for (int n : {1000, 2000}) {
    SimFederation::Options o;
    o.servers = n;
    for (int i = n - 100; i < n; ++i) o.dead.push_back(i);
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<SimFederation>> sim = SimFederation::Start(o);
    ASSERT_TRUE(sim.ok()) << sim.status();
    std::cout << "[sim] " << n << " servers up in " << (absl::Now() - start) << std::endl;
    const std::string last_live = SimFederation::ServerName(n - 101);
    EXPECT_EQ(Dig(**sim, "SRV", "_matrix-fed._tcp." + last_live),
              absl::StrCat("0 0 ", (*sim)->https_port(), " live.sim.test."));
    EXPECT_EQ(Dig(**sim, "SRV", "_matrix-fed._tcp." + SimFederation::ServerName(n - 1)),
              absl::StrCat("0 0 ", (*sim)->dead_port(), " dead.sim.test."));
    HttpAnswer a = Curl(**sim, last_live, "/_matrix/key/v2/server");
    absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(a.body);
    ASSERT_TRUE(keys.ok()) << keys.status();
    EXPECT_EQ(keys->server_name, last_live);
  }
}

TEST(SimFederationOptionsTest, RejectsServersOutsideTheSim) {
  SimFederation::Options o;
  o.servers = 3;
  o.dead = {3};
  EXPECT_EQ(SimFederation::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keyverifier::testing
