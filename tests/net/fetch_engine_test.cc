// FetchEngine with its real users on loopback: CurlHttpClient against the
// scripted HTTPS server and against listeners that accept and never answer;
// timers and tasks on their own.
#include "service/net/fetch_engine.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/net/http_client.h"
#include "tests/testing/https_server.h"

namespace keyverifier::net {
namespace {

using testing::HttpsServer;

// Bounds for a busy two-core machine: each is many times what the work
// needs when it runs concurrently, and far below what it needs serially.
constexpr absl::Duration kPatience = absl::Seconds(30);

int ThreadCount() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

bool HasThreadNamed(const std::string& name) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(absl::StrCat("/proc/self/task/", e->d_name, "/comm"));
    std::string comm;
    std::getline(f, comm);
    found |= absl::StripAsciiWhitespace(comm) == name;
  }
  closedir(dir);
  return found;
}

// Listeners on loopback that accept every connection and never answer:
// what arrives is read and dropped, and a connection stays open until the
// client closes it. Counts the connections open at once, in all.
class HungListeners {
 public:
  explicit HungListeners(int ports = 1) {
    for (int i = 0; i < ports; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = 0;
      socklen_t len = sizeof a;
      if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          listen(fd, 1024) != 0 ||
          getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ADD_FAILURE() << "listener: " << std::strerror(errno);
        if (fd >= 0) close(fd);
        continue;
      }
      listeners_.push_back(fd);
      ports_.push_back(ntohs(a.sin_port));
    }
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) ADD_FAILURE() << "pipe2";
    thread_ = std::thread([this] { Run(); });
  }
  ~HungListeners() {
    char c = 0;
    [[maybe_unused]] ssize_t n = write(wake_[1], &c, 1);
    thread_.join();
    for (int fd : listeners_) close(fd);
    for (int fd : connections_) close(fd);
    close(wake_[0]);
    close(wake_[1]);
  }

  uint16_t port(int i = 0) const { return ports_[i]; }
  int open() {
    absl::MutexLock lock(&mu_);
    return open_;
  }
  int peak() {
    absl::MutexLock lock(&mu_);
    return peak_;
  }
  int accepted() {
    absl::MutexLock lock(&mu_);
    return accepted_;
  }
  // Waits until `n` connections have been accepted in all.
  bool AwaitAccepted(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return accepted_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  void Run() {
    for (;;) {
      std::vector<pollfd> fds;
      fds.push_back({wake_[0], POLLIN, 0});
      for (int fd : listeners_) fds.push_back({fd, POLLIN, 0});
      for (int fd : connections_) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents != 0) return;
      // Accept first, then look at every connection: a client closes a
      // connection before it opens the next, so any close that came before
      // an accepted connection is seen by the sweep and the count of open
      // connections never counts a closed one as open.
      for (int fd : listeners_) {
        for (;;) {
          int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          connections_.push_back(c);
          absl::MutexLock lock(&mu_);
          ++accepted_;
        }
      }
      std::vector<int> still_open;
      for (int fd : connections_) {
        if (PeerClosed(fd)) {
          close(fd);
        } else {
          still_open.push_back(fd);
        }
      }
      connections_ = std::move(still_open);
      absl::MutexLock lock(&mu_);
      open_ = static_cast<int>(connections_.size());
      peak_ = std::max(peak_, open_);
    }
  }

  // Reads and drops what is waiting; true when the client has gone away.
  static bool PeerClosed(int fd) {
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
  }

  std::vector<int> listeners_;
  std::vector<uint16_t> ports_;
  std::vector<int> connections_;  // the listener thread's
  int wake_[2] = {-1, -1};
  absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  int peak_ ABSL_GUARDED_BY(mu_) = 0;
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// The answers of many requests, as they arrive.
class Answers {
 public:
  async::Callback<HttpResponse> Add() {
    return [this](absl::StatusOr<HttpResponse> r) {
      absl::MutexLock lock(&mu_);
      results_.push_back(std::move(r));
    };
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(results_.size());
  }
  bool AwaitCount(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(results_.size()) >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }
  // How many answers had each code; the first message of each code.
  std::map<absl::StatusCode, int> Codes() {
    absl::MutexLock lock(&mu_);
    std::map<absl::StatusCode, int> out;
    for (const auto& r : results_) ++out[r.status().code()];
    return out;
  }
  std::string Sample(absl::StatusCode code) {
    absl::MutexLock lock(&mu_);
    for (const auto& r : results_) {
      if (r.status().code() == code) return r.status().ToString();
    }
    return "";
  }
  bool AllOk(int status) {
    absl::MutexLock lock(&mu_);
    return std::all_of(results_.begin(), results_.end(), [status](const auto& r) {
      return r.ok() && r->status == status;
    });
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::StatusOr<HttpResponse>> results_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<FetchEngine> Engine(int max_connections, int per_host) {
  FetchEngine::Options o;
  o.max_connections = max_connections;
  o.max_connections_per_host = per_host;
  absl::StatusOr<std::unique_ptr<FetchEngine>> e = FetchEngine::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

HttpRequest Request(uint16_t port, const std::string& path = "/") {
  HttpRequest r;
  r.host_header = absl::StrCat("a.test:", port);
  r.path = path;
  r.connect_to = {*ParseIpAddress("127.0.0.1"), port};
  r.tls_name = "a.test";
  return r;
}

class FetchEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<CurlHttpClient> Client(FetchEngine& engine,
                                         absl::Duration total = absl::Seconds(30)) {
    CurlHttpClient::Options o;
    o.total_timeout = total;
    return *CurlHttpClient::Create(engine, verifier_, filter_, o);
  }
  AcceptAnyPeer verifier_;
  IpFilter filter_ = IpFilter::AllowAll();
};

TEST_F(FetchEngineTest, BadOptionsAreRefused) {
  FetchEngine::Options o;
  o.max_connections_per_host = 0;
  EXPECT_EQ(FetchEngine::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

// 1. Fifty slow requests in flight at once take about as long as one, on the
// one loop thread: the thread count does not grow with the transfers in
// flight.
TEST_F(FetchEngineTest, ManyTransfersRunConcurrentlyOnOneThread) {
  HttpsServer::Options so;
  so.names = {"a.test"};
  so.routes_json = R"({"/slow": {"status": 200, "body": "{}", "delay_ms": 1000}})";
  absl::StatusOr<std::unique_ptr<HttpsServer>> server = HttpsServer::Start(so);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = static_cast<uint16_t>((*server)->port());

  Answers answers;
  auto engine = Engine(256, 64);
  auto client = Client(*engine);
  const int threads_before = ThreadCount();
  constexpr int kRequests = 50;
  const absl::Time start = absl::Now();
  // In bursts of five: the test server listens with Python's backlog of 5,
  // and a burst of 50 connects would overflow it (the kernel drops the
  // extra SYNs and the clients retry one and three seconds later). The
  // bursts take half a second; every request then waits on the server's
  // one-second delay at the same time.
  for (int i = 0; i < kRequests; ++i) {
    if (i > 0 && i % 5 == 0) absl::SleepFor(absl::Milliseconds(50));
    client->Send(Request(port, "/slow"), start + kPatience, answers.Add());
  }
  int threads_during = 0;
  int most_in_flight = 0;
  while (!answers.AwaitCount(kRequests, absl::Milliseconds(20))) {
    threads_during = std::max(threads_during, ThreadCount());
    most_in_flight = std::max(most_in_flight, engine->in_flight());
    if (absl::Now() - start > kPatience) break;
  }
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(answers.count(), kRequests);
  EXPECT_TRUE(answers.AllOk(200)) << answers.Sample(absl::StatusCode::kUnavailable);
  // One after another this is 50 s; together about 1.5 s.
  EXPECT_LT(took, absl::Seconds(10)) << took;
  EXPECT_GE(most_in_flight, kRequests / 2);
  EXPECT_LE(threads_during, threads_before)
      << "threads went from " << threads_before << " to " << threads_during;
  EXPECT_EQ(engine->in_flight(), 0);
}

// 2. Two hundred requests to a peer that accepts and never answers all time
// out together after their one-second budget, not one after another.
TEST_F(FetchEngineTest, HungPeerTimesOutEveryRequestConcurrently) {
  HungListeners hung;
  Answers answers;
  auto engine = Engine(512, 256);
  auto client = Client(*engine, absl::Seconds(1));
  constexpr int kRequests = 200;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRequests; ++i) {
    client->Send(Request(hung.port()), start + kPatience, answers.Add());
  }
  ASSERT_TRUE(answers.AwaitCount(kRequests, kPatience)) << answers.count();
  const absl::Duration took = absl::Now() - start;
  // The total timeout, not the caller's deadline, cut them off.
  EXPECT_EQ(answers.Codes()[absl::StatusCode::kUnavailable], kRequests)
      << answers.Sample(absl::StatusCode::kUnavailable);
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(6)) << took;  // serially: 200 s
  EXPECT_GT(hung.peak(), 1);
}

// A request's own budget runs from its connection attempt: time queued for
// a connection slot counts only towards the caller's deadline. With two
// connections per host, a peer that never answers, a one-second request
// budget and a deadline 3.5 s out, twenty requests go two at a time: the
// pairs that get a connection each take their full second (the server's
// failure, UNAVAILABLE), and at the deadline the rest end DEADLINE_EXCEEDED,
// the caller's, not the server's.
TEST_F(FetchEngineTest, TimeQueuedForASlotCountsTowardsTheDeadlineNotTheRequestBudget) {
  HungListeners hung;
  Answers answers;
  auto engine = Engine(256, 2);
  auto client = Client(*engine, absl::Seconds(1));
  constexpr int kRequests = 20;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRequests; ++i) {
    client->Send(Request(hung.port()), start + absl::Milliseconds(3500), answers.Add());
  }
  ASSERT_TRUE(answers.AwaitCount(kRequests, kPatience)) << answers.count();
  const absl::Duration took = absl::Now() - start;
  std::map<absl::StatusCode, int> codes = answers.Codes();
  const int server = codes[absl::StatusCode::kUnavailable];
  const int caller = codes[absl::StatusCode::kDeadlineExceeded];
  EXPECT_EQ(server + caller, kRequests);
  // About three rounds of two had their second (not one: each started only
  // when a slot was free, and kept its whole budget).
  EXPECT_GE(server, 4);
  EXPECT_LE(server, 8);
  EXPECT_TRUE(absl::StrContains(answers.Sample(absl::StatusCode::kUnavailable),
                                "timed out after 1s"))
      << answers.Sample(absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(answers.Sample(absl::StatusCode::kDeadlineExceeded),
                                "timed out after"))
      << answers.Sample(absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(3400));
  EXPECT_LT(took, absl::Seconds(6)) << took;  // the deadline, not ten rounds of one second
  EXPECT_LE(hung.peak(), 2);
}

// A short budget queued behind a long one ends with its own budget, not
// when the long one frees the connection slot.
TEST_F(FetchEngineTest, QueuedTransferEndsAtItsOwnDeadline) {
  HungListeners hung;
  Answers slow, quick;
  auto engine = Engine(256, 1);
  auto slow_client = Client(*engine, absl::Seconds(20));
  auto quick_client = Client(*engine, absl::Seconds(30));
  const absl::Time start = absl::Now();
  slow_client->Send(Request(hung.port()), start + kPatience, slow.Add());
  ASSERT_TRUE(hung.AwaitAccepted(1, kPatience));
  // Queued behind the first (one connection per host); its caller's
  // deadline sets its budget.
  quick_client->Send(Request(hung.port()), absl::Now() + absl::Milliseconds(500), quick.Add());
  ASSERT_TRUE(quick.AwaitCount(1, kPatience));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // not the first one's 20 s
  EXPECT_EQ(quick.Codes()[absl::StatusCode::kDeadlineExceeded], 1)
      << quick.Sample(absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(quick.Sample(absl::StatusCode::kDeadlineExceeded),
                                "before any connection was made"))
      << quick.Sample(absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(slow.count(), 0);
  EXPECT_EQ(hung.accepted(), 1);
  engine->Stop();
  EXPECT_EQ(slow.Codes()[absl::StatusCode::kCancelled], 1);
}

// 3. Stop with a hundred hung transfers in flight: every callback has run,
// with CancelledError, when Stop returns; the loop thread is gone; later
// requests are cancelled at once.
TEST_F(FetchEngineTest, StopCancelsEveryTransferInFlight) {
  HungListeners hung;
  Answers answers;
  const int threads_without_engine = ThreadCount();
  auto engine = Engine(256, 4);
  auto client = Client(*engine);
  EXPECT_TRUE(HasThreadNamed("kv-fetch"));
  constexpr int kRequests = 100;
  for (int i = 0; i < kRequests; ++i) {
    client->Send(Request(hung.port()), absl::Now() + absl::Minutes(5), answers.Add());
  }
  // Four connected and waiting, the rest queued behind the per-host limit.
  ASSERT_TRUE(hung.AwaitAccepted(4, kPatience));
  EXPECT_EQ(engine->in_flight(), kRequests);
  EXPECT_EQ(answers.count(), 0);

  const absl::Time stop = absl::Now();
  engine->Stop();
  EXPECT_LT(absl::Now() - stop, absl::Seconds(5));
  EXPECT_EQ(answers.count(), kRequests);
  EXPECT_EQ(answers.Codes()[absl::StatusCode::kCancelled], kRequests)
      << answers.Sample(absl::StatusCode::kCancelled);
  EXPECT_EQ(engine->in_flight(), 0);
  EXPECT_FALSE(HasThreadNamed("kv-fetch"));
  EXPECT_EQ(ThreadCount(), threads_without_engine);

  bool answered = false;
  client->Send(Request(hung.port()), absl::Now() + absl::Minutes(5),
               [&answered](absl::StatusOr<HttpResponse> r) {
                 answered = true;
                 EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
               });
  EXPECT_TRUE(answered);  // inline
  engine->Stop();         // again: nothing to do
}

// 4. The connection limits hold at the peer: never more than two
// connections to one host, never more than three in all.
TEST_F(FetchEngineTest, ConnectionsPerHostAreCapped) {
  HungListeners hung;
  Answers answers;
  auto engine = Engine(256, 2);
  auto client = Client(*engine);
  constexpr int kRequests = 20;
  for (int i = 0; i < kRequests; ++i) {
    client->Send(Request(hung.port()), absl::Now() + absl::Minutes(5), answers.Add());
  }
  ASSERT_TRUE(hung.AwaitAccepted(2, kPatience));
  // Give a third connection, if the cap let one through, time to arrive.
  EXPECT_FALSE(hung.AwaitAccepted(3, absl::Milliseconds(500)));
  EXPECT_EQ(hung.peak(), 2);
  EXPECT_EQ(engine->in_flight(), kRequests);
  engine->Stop();
  EXPECT_EQ(answers.Codes()[absl::StatusCode::kCancelled], kRequests);
}

TEST_F(FetchEngineTest, ConnectionsInAllAreCapped) {
  HungListeners hung(3);
  Answers answers;
  auto engine = Engine(3, 10);
  auto client = Client(*engine);
  constexpr int kPerHost = 10;
  for (int i = 0; i < kPerHost; ++i) {
    for (int p = 0; p < 3; ++p) {
      client->Send(Request(hung.port(p)), absl::Now() + absl::Minutes(5), answers.Add());
    }
  }
  ASSERT_TRUE(hung.AwaitAccepted(3, kPatience));
  EXPECT_FALSE(hung.AwaitAccepted(4, absl::Milliseconds(500)));
  EXPECT_EQ(hung.peak(), 3);
  EXPECT_EQ(engine->in_flight(), 3 * kPerHost);
  engine->Stop();
  EXPECT_EQ(answers.Codes()[absl::StatusCode::kCancelled], 3 * kPerHost);
}

// 5. Timers and tasks.
// (Each test declares its engine last, so that it stops, and its loop
// thread is joined, before anything its tasks touch goes away.)
TEST_F(FetchEngineTest, TimersRunInTimeOrderOnTheLoop) {
  absl::Mutex mu;
  std::vector<int> order;
  bool all_in_loop = true;
  absl::Notification last;
  auto engine = Engine(8, 2);
  // The timers are set from one task on the loop, so none can run before
  // all are set: set from this thread, the one due now could run before
  // the one already past was set (seen under ThreadSanitizer's slowdown).
  ASSERT_TRUE(engine->Post([&] {
    const absl::Time now = absl::Now();
    for (int ms : {300, 100, 200, 0, -50}) {
      engine->RunAt(now + absl::Milliseconds(ms), [&, ms] {
        absl::MutexLock lock(&mu);
        order.push_back(ms);
        all_in_loop &= engine->InLoop();
      });
    }
    engine->RunAt(now + absl::Milliseconds(400), [&] { last.Notify(); });
  }));
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(kPatience));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{-50, 0, 100, 200, 300}));
  EXPECT_TRUE(all_in_loop);
  EXPECT_FALSE(engine->InLoop());
}

TEST_F(FetchEngineTest, CancelledTimerNeverRuns) {
  std::atomic<bool> cancelled_ran{false};
  absl::Notification ran, after;
  auto engine = Engine(8, 2);
  const absl::Time now = absl::Now();
  auto id = engine->RunAt(now + absl::Milliseconds(100), [&] { cancelled_ran = true; });
  auto kept = engine->RunAt(now + absl::Milliseconds(50), [&] { ran.Notify(); });
  EXPECT_TRUE(engine->Cancel(id));
  EXPECT_FALSE(engine->Cancel(id));
  engine->RunAt(now + absl::Milliseconds(300), [&] { after.Notify(); });
  ASSERT_TRUE(after.WaitForNotificationWithTimeout(kPatience));
  EXPECT_TRUE(ran.HasBeenNotified());
  EXPECT_FALSE(cancelled_ran);
  EXPECT_FALSE(engine->Cancel(kept));  // it already ran
}

TEST_F(FetchEngineTest, PostedTasksRunOnTheLoopInOrder) {
  std::vector<int> order;  // written on the loop only
  bool all_in_loop = true;
  absl::Notification done;
  auto engine = Engine(8, 2);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(engine->Post([&, i] {
      order.push_back(i);
      all_in_loop &= engine->InLoop();
    }));
  }
  ASSERT_TRUE(engine->Post([&] { done.Notify(); }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kPatience));
  ASSERT_EQ(order.size(), 100u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_TRUE(all_in_loop);
}

TEST_F(FetchEngineTest, StopRunsPendingTimersAndPostedTasksThenRefusesWork) {
  bool timer_ran = false, timer_in_loop = false, posted_ran = false;
  auto engine = Engine(8, 2);
  engine->RunAt(absl::Now() + absl::Hours(1), [&] {
    timer_ran = true;
    timer_in_loop = engine->InLoop();
  });
  auto cancelled = engine->RunAt(absl::Now() + absl::Hours(1), [] { ADD_FAILURE(); });
  EXPECT_TRUE(engine->Cancel(cancelled));
  ASSERT_TRUE(engine->Post([&] { posted_ran = true; }));
  const absl::Time stop = absl::Now();
  engine->Stop();
  EXPECT_LT(absl::Now() - stop, absl::Seconds(5));  // not an hour
  EXPECT_TRUE(timer_ran);
  EXPECT_TRUE(timer_in_loop);
  EXPECT_TRUE(posted_ran);
  EXPECT_FALSE(HasThreadNamed("kv-fetch"));

  // Afterwards: tasks refused, timers run inline, transfers and DNS
  // answered inline.
  EXPECT_FALSE(engine->Post([] { ADD_FAILURE(); }));
  bool inline_ran = false;
  engine->RunAt(absl::Now() + absl::Hours(1), [&] { inline_ran = true; });
  EXPECT_TRUE(inline_ran);
  CURL* easy = curl_easy_init();
  int code = -1;
  engine->AddTransfer(easy, [&code](int c) { code = c; });
  EXPECT_EQ(code, CURLE_ABORTED_BY_CALLBACK);
  curl_easy_cleanup(easy);
  bool dns_started = false;
  engine->WithDns([&](void* channel) {
    dns_started = true;
    EXPECT_EQ(channel, nullptr);
  });
  EXPECT_TRUE(dns_started);
  EXPECT_TRUE(engine->ConfigureDns("127.0.0.1:53", absl::Seconds(1), 1).ok());
  EXPECT_FALSE(engine->ConfigureDns("not a server!", absl::Seconds(1), 1).ok());
}

TEST_F(FetchEngineTest, StopFromSeveralThreadsAtOnce) {
  auto engine = Engine(8, 2);
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 4; ++i) stoppers.emplace_back([&] { engine->Stop(); });
  for (auto& t : stoppers) t.join();
  EXPECT_FALSE(engine->Post([] {}));
}

// Work started from the loop itself (a callback starting the next request)
// runs there without a hop, and a callback that starts work while the
// engine stops is answered at once.
TEST_F(FetchEngineTest, CallbacksMayStartWorkOnTheLoop) {
  HungListeners hung;
  absl::Notification chained;
  absl::Status second;
  auto engine = Engine(8, 8);
  auto client = Client(*engine);
  ASSERT_TRUE(engine->Post([&] {
    client->Send(Request(hung.port()), absl::Now() + absl::Minutes(5),
                 [&](absl::StatusOr<HttpResponse> r) {
                   // Cancelled by Stop; the next request is refused inline.
                   client->Send(Request(hung.port()), absl::Now() + absl::Minutes(5),
                                [&](absl::StatusOr<HttpResponse> r2) {
                                  second = r2.status();
                                  chained.Notify();
                                });
                 });
  }));
  ASSERT_TRUE(hung.AwaitAccepted(1, kPatience));
  engine->Stop();
  EXPECT_TRUE(chained.HasBeenNotified());
  EXPECT_TRUE(absl::IsCancelled(second)) << second;
}

}  // namespace
}  // namespace keyverifier::net
