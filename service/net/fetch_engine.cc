#include "service/net/fetch_engine.h"

#include <ares.h>
#include <curl/curl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace keyverifier::net {
namespace {

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct MultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
using Multi = std::unique_ptr<CURLM, MultiDeleter>;

struct ChannelDeleter {
  void operator()(ares_channel c) const { ares_destroy(c); }
};
using Channel = std::unique_ptr<std::remove_pointer_t<ares_channel>, ChannelDeleter>;

bool LibrariesReady() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK &&
                         ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS;
  return ok;
}

// The engine whose loop runs on this thread, if any.
thread_local const void* current_loop = nullptr;

// The longest epoll wait: a bound against clock jumps, nothing more.
constexpr absl::Duration kMaxWait = absl::Seconds(60);

}  // namespace

class FetchEngine::Impl {
 public:
  using Done = absl::AnyInvocable<void(int curl_code)>;

  explicit Impl(Options options) : options_(options) {}
  ~Impl() {
    // Only reached after the loop has exited (or never started): the handles
    // are torn down there, on the loop's thread.
    channel_.reset();
    multi_.reset();
  }

  absl::Status Init();
  void Start() {
    absl::MutexLock lock(&join_mu_);
    thread_ = std::thread([this] { Run(); });
    // Named before Create returns, for operators (top -H) and tests.
    pthread_setname_np(thread_.native_handle(), options_.name.substr(0, 15).c_str());
  }

  bool Post(async::Task task) { return Enqueue(task); }
  TimerId RunAt(absl::Time when, async::Task task);
  bool Cancel(TimerId id) {
    absl::MutexLock lock(&mu_);
    return timers_.erase(id) > 0;
  }
  void AddTransfer(CURL* easy, absl::Time deadline, Phases phases, Done done);
  void WithDns(absl::AnyInvocable<void(void* channel)> start);
  absl::Status ConfigureDns(const std::string& servers, absl::Duration query_timeout,
                            int tries, const std::string& resolv_conf);
  bool InLoop() const { return current_loop == this; }
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  void Stop();

 private:
  // Who watches a descriptor, and for what: libcurl (CURL_POLL_*) or c-ares
  // (bit 0 read, bit 1 write).
  struct Socket {
    int curl_what = 0;
    int ares_bits = 0;
    uint32_t events = 0;  // registered with epoll
    bool registered = false;
  };
  struct Running {
    Done done;
    TimerId deadline_timer = 0;  // 0: none
    TimerId phase_timer = 0;     // 0: none
    absl::Time added;
    absl::Time connecting = absl::InfiniteFuture();  // its connection attempt began
    absl::Time connected = absl::InfiniteFuture();   // the TCP connection made
    Phases phases;
  };
  struct Due {
    absl::Time when;
    TimerId id;
    bool operator>(const Due& o) const {
      return when != o.when ? when > o.when : id > o.id;
    }
  };

  static int OnCurlSocket(CURL* easy, curl_socket_t fd, int what, void* userp, void*);
  static int OnCurlTimer(CURLM*, long timeout_ms, void* userp);
  static void OnAresSocket(void* data, ares_socket_t fd, int readable, int writable);

  absl::StatusOr<Channel> NewChannel(const std::string& servers,
                                     std::optional<absl::Duration> query_timeout,
                                     int tries, const std::string& resolv_conf);
  // Queues `task` for the loop; moves from it only when it was queued.
  bool Enqueue(async::Task& task);
  void Wake();

  // Loop thread only.
  void Run();
  int NextWaitMs();
  void Dispatch(const epoll_event& ev);
  void Watch(int fd);
  void RunCurlTimer();
  void RunDnsTimeouts();
  void CollectDone();
  void Complete(CURL* easy, int code);
  void RunDueTimers();
  void RunPosted();
  void AddOnLoop(CURL* easy, absl::Time deadline, Phases phases, Done done);
  // The phase budgets' check: ends the transfer if its connection or its
  // handshake is overdue, else checks again when one would be.
  void CheckPhases(CURL* easy);
  void InstallChannel(Channel channel);
  void Shutdown();

  const Options options_;
  UniqueFd epoll_;
  UniqueFd wake_;

  // Loop thread only (and Init/the destructor, when no loop runs).
  Multi multi_;
  Channel channel_;
  std::map<int, Socket> sockets_;
  std::map<CURL*, Running> transfers_;
  std::optional<absl::Time> curl_due_;
  bool closing_ = false;  // Stop has begun: new work is refused at once

  std::atomic<int> in_flight_{0};

  mutable absl::Mutex mu_;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // nothing more is queued
  std::deque<async::Task> posted_ ABSL_GUARDED_BY(mu_);
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_ ABSL_GUARDED_BY(mu_);
  // Pending timer tasks; a cancelled one leaves its entry in `due_` behind.
  std::map<TimerId, async::Task> timers_ ABSL_GUARDED_BY(mu_);
  TimerId next_timer_ ABSL_GUARDED_BY(mu_) = 1;

  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

absl::Status FetchEngine::Impl::Init() {
  epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (epoll_.get() < 0) {
    return absl::InternalError(absl::StrCat("epoll_create1: ", std::strerror(errno)));
  }
  wake_ = UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake_.get() < 0) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", std::strerror(errno)));
  }

  multi_.reset(curl_multi_init());
  if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
  CURLM* m = multi_.get();
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, OnCurlSocket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, OnCurlTimer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                    static_cast<long>(options_.max_connections));
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(options_.max_connections_per_host));
  // Every transfer gets a connection (and a certificate check) of its own:
  // no HTTP/2 stream shares another transfer's connection.
  curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);

  absl::StatusOr<Channel> channel = NewChannel("", std::nullopt, 0, "");
  if (!channel.ok()) return channel.status();
  channel_ = *std::move(channel);
  return absl::OkStatus();
}

absl::StatusOr<Channel> FetchEngine::Impl::NewChannel(
    const std::string& servers, std::optional<absl::Duration> query_timeout, int tries,
    const std::string& resolv_conf) {
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB;
  opts.sock_state_cb = OnAresSocket;
  opts.sock_state_cb_data = this;
  // Names are absolute: resolv.conf's search domains are never appended (in
  // Kubernetes, "ndots:5" would ask for matrix.org.<ns>.svc.cluster.local
  // first, and a name that does not exist could be answered by one of the
  // cluster's). No search list at all, NOSEARCH for the lookups that honour
  // it, and ndots 1 in place of resolv.conf's, so every name with a dot is
  // asked as it is first even if a later c-ares read a search list anyway.
  mask |= ARES_OPT_FLAGS | ARES_OPT_DOMAINS | ARES_OPT_NDOTS;
  opts.flags = ARES_FLAG_NOSEARCH;
  opts.domains = nullptr;
  opts.ndomains = 0;
  opts.ndots = 1;
  std::string conf_path = resolv_conf;
  if (!resolv_conf.empty()) {
    mask |= ARES_OPT_RESOLVCONF;
    opts.resolvconf_path = conf_path.data();
  }
  if (query_timeout.has_value()) {
    mask |= ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    opts.timeout = static_cast<int>(absl::ToInt64Milliseconds(*query_timeout));
    opts.tries = tries;
  }
  // With explicit servers, answers come from them alone (no /etc/hosts).
  char lookups[] = "b";
  if (!servers.empty()) {
    mask |= ARES_OPT_LOOKUPS;
    opts.lookups = lookups;
  }
  ares_channel raw = nullptr;
  int rc = ares_init_options(&raw, &opts, mask);
  if (rc != ARES_SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("c-ares channel could not be created: ", ares_strerror(rc)));
  }
  Channel channel(raw);
  if (!servers.empty()) {
    rc = ares_set_servers_ports_csv(channel.get(), servers.c_str());
    if (rc != ARES_SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("dns servers \"", servers, "\": ", ares_strerror(rc)));
    }
  }
  return channel;
}

bool FetchEngine::Impl::Enqueue(async::Task& task) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return false;
  posted_.push_back(std::move(task));
  Wake();
  return true;
}

void FetchEngine::Impl::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop wakes anyway.
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof one);
}

FetchEngine::TimerId FetchEngine::Impl::RunAt(absl::Time when, async::Task task) {
  TimerId id = 0;
  {
    absl::MutexLock lock(&mu_);
    id = next_timer_++;
    if (!stopped_) {
      timers_.emplace(id, std::move(task));
      due_.push({when, id});
      if (!InLoop()) Wake();
      return id;
    }
  }
  task();  // stopped: nothing would ever run it later
  return id;
}

void FetchEngine::Impl::AddTransfer(CURL* easy, absl::Time deadline, Phases phases,
                                    Done done) {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  if (InLoop()) {
    AddOnLoop(easy, deadline, phases, std::move(done));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      posted_.push_back([this, easy, deadline, phases, done = std::move(done)]() mutable {
        AddOnLoop(easy, deadline, phases, std::move(done));
      });
      Wake();
      return;
    }
  }
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  done(CURLE_ABORTED_BY_CALLBACK);
}

void FetchEngine::Impl::WithDns(absl::AnyInvocable<void(void* channel)> start) {
  if (InLoop()) {
    start(closing_ ? nullptr : channel_.get());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      posted_.push_back([this, start = std::move(start)]() mutable {
        start(closing_ ? nullptr : channel_.get());
      });
      Wake();
      return;
    }
  }
  start(nullptr);
}

absl::Status FetchEngine::Impl::ConfigureDns(const std::string& servers,
                                             absl::Duration query_timeout, int tries,
                                             const std::string& resolv_conf) {
  if (tries < 1) return absl::InvalidArgumentError("dns tries must be at least 1");
  if (query_timeout < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("dns query timeout must be positive");
  }
  // A new channel is private to this thread until it is installed on the loop.
  absl::StatusOr<Channel> channel = NewChannel(servers, query_timeout, tries, resolv_conf);
  if (!channel.ok()) return channel.status();
  if (InLoop()) {
    InstallChannel(*std::move(channel));
    return absl::OkStatus();
  }
  absl::Notification installed;
  async::Task install = [this, &channel, &installed] {
    InstallChannel(*std::move(channel));
    installed.Notify();
  };
  // Stopped: there is nothing left to configure.
  if (Enqueue(install)) installed.WaitForNotification();
  return absl::OkStatus();
}

void FetchEngine::Impl::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_requested_ = true;
    Wake();
  }
  if (InLoop()) return;  // joining here would wait forever; see the header
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

// --- libcurl and c-ares callbacks (always on the loop thread) ---

int FetchEngine::Impl::OnCurlSocket(CURL* easy, curl_socket_t fd, int what, void* userp,
                                    void*) {
  auto* self = static_cast<Impl*>(userp);
  // The first socket libcurl watches for a transfer is its connection
  // attempt (a transfer queued for a connection slot has none yet). It
  // waits for the socket to be writable while it connects, and readable
  // once connected (the TLS handshake's answer): the first wait for
  // reading is when the connection was made. (libcurl's own connect time
  // is only set once the TLS handshake is done too.)
  if (what != CURL_POLL_REMOVE) {
    if (auto it = self->transfers_.find(easy); it != self->transfers_.end()) {
      Running& r = it->second;
      const absl::Time now = absl::Now();
      if (r.connecting == absl::InfiniteFuture()) r.connecting = now;
      if ((what & CURL_POLL_IN) != 0 && r.connected == absl::InfiniteFuture()) r.connected = now;
    }
  }
  self->sockets_[fd].curl_what = what == CURL_POLL_REMOVE ? 0 : what;
  self->Watch(fd);
  return 0;
}

int FetchEngine::Impl::OnCurlTimer(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<Impl*>(userp);
  if (timeout_ms < 0) {
    self->curl_due_.reset();
  } else {
    self->curl_due_ = absl::Now() + absl::Milliseconds(timeout_ms);
  }
  return 0;
}

void FetchEngine::Impl::OnAresSocket(void* data, ares_socket_t fd, int readable,
                                     int writable) {
  auto* self = static_cast<Impl*>(data);
  self->sockets_[fd].ares_bits = (readable ? 1 : 0) | (writable ? 2 : 0);
  self->Watch(fd);
}

// Brings epoll's interest in `fd` in line with what libcurl and c-ares want.
void FetchEngine::Impl::Watch(int fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  Socket& s = it->second;
  uint32_t events = 0;
  if (s.curl_what & CURL_POLL_IN) events |= EPOLLIN;
  if (s.curl_what & CURL_POLL_OUT) events |= EPOLLOUT;
  if (s.ares_bits & 1) events |= EPOLLIN;
  if (s.ares_bits & 2) events |= EPOLLOUT;
  if (s.curl_what == 0 && s.ares_bits == 0) {
    // Closed or about to be: a descriptor already closed has left epoll.
    if (s.registered) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    sockets_.erase(it);
    return;
  }
  if (s.registered && s.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  int op = s.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  int rc = epoll_ctl(epoll_.get(), op, fd, &ev);
  // The descriptor may have been closed and its number reused behind our
  // back (epoll forgets closed descriptors): try the other operation.
  if (rc != 0 && errno == ENOENT && op == EPOLL_CTL_MOD) {
    rc = epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  } else if (rc != 0 && errno == EEXIST && op == EPOLL_CTL_ADD) {
    rc = epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  }
  s.registered = rc == 0;
  s.events = rc == 0 ? events : 0;
}

// --- the loop ---

void FetchEngine::Impl::Run() {
  current_loop = this;
  std::vector<epoll_event> events(64);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_requested_) break;
    }
    const int wait_ms = NextWaitMs();
    int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
    if (n < 0) n = 0;  // EINTR; nothing else can fail on a valid epoll fd
    for (int i = 0; i < n; ++i) Dispatch(events[i]);
    RunCurlTimer();
    RunDnsTimeouts();
    CollectDone();
    RunDueTimers();
    RunPosted();
    CollectDone();  // transfers a task failed to add complete here too
  }
  Shutdown();
  current_loop = nullptr;
}

int FetchEngine::Impl::NextWaitMs() {
  const absl::Time now = absl::Now();
  std::optional<absl::Time> next = curl_due_;
  auto earlier = [&next](absl::Time t) {
    if (!next.has_value() || t < *next) next = t;
  };
  {
    absl::MutexLock lock(&mu_);
    if (!posted_.empty() || stop_requested_) return 0;
    while (!due_.empty() && timers_.count(due_.top().id) == 0) due_.pop();  // cancelled
    if (!due_.empty()) earlier(due_.top().when);
  }
  if (channel_ != nullptr) {
    timeval tv{};
    if (ares_timeout(channel_.get(), nullptr, &tv) != nullptr) {
      earlier(now + absl::Seconds(tv.tv_sec) + absl::Microseconds(tv.tv_usec));
    }
  }
  if (!next.has_value()) return -1;
  const absl::Duration wait = std::min(*next - now, kMaxWait);
  if (wait <= absl::ZeroDuration()) return 0;
  // Round up: waking a little early would only spin.
  return static_cast<int>(std::ceil(absl::ToDoubleMilliseconds(wait)));
}

void FetchEngine::Impl::Dispatch(const epoll_event& ev) {
  const int fd = ev.data.fd;
  if (fd == wake_.get()) {
    uint64_t count = 0;
    [[maybe_unused]] ssize_t n = read(wake_.get(), &count, sizeof count);
    return;
  }
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;  // removed by an earlier event of this batch
  const bool error = (ev.events & (EPOLLERR | EPOLLHUP)) != 0;
  const bool readable = (ev.events & EPOLLIN) != 0 || error;
  const bool writable = (ev.events & EPOLLOUT) != 0;
  const bool for_curl = it->second.curl_what != 0;
  const bool for_ares = it->second.ares_bits != 0;
  if (for_curl && multi_ != nullptr) {
    int flags = 0;
    if (ev.events & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (writable) flags |= CURL_CSELECT_OUT;
    if (error) flags |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(multi_.get(), fd, flags, &running);
  }
  if (for_ares && channel_ != nullptr) {
    ares_process_fd(channel_.get(), readable ? fd : ARES_SOCKET_BAD,
                    writable ? fd : ARES_SOCKET_BAD);
  }
}

void FetchEngine::Impl::RunCurlTimer() {
  if (multi_ == nullptr || !curl_due_.has_value() || *curl_due_ > absl::Now()) return;
  curl_due_.reset();
  int running = 0;
  curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
}

void FetchEngine::Impl::RunDnsTimeouts() {
  if (channel_ == nullptr) return;
  timeval tv{};
  if (ares_timeout(channel_.get(), nullptr, &tv) == nullptr) return;  // nothing pending
  if (tv.tv_sec == 0 && tv.tv_usec == 0) {
    ares_process_fd(channel_.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }
}

void FetchEngine::Impl::CollectDone() {
  if (multi_ == nullptr) return;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    // `msg` dies with the handle's removal: copy first.
    CURL* easy = msg->easy_handle;
    const int code = msg->data.result;
    Complete(easy, code);
  }
}

void FetchEngine::Impl::Complete(CURL* easy, int code) {
  auto node = transfers_.extract(easy);
  if (node.empty()) return;
  // Cancelled here, on the loop, the timer cannot fire later for another
  // transfer whose handle has the same address.
  if (node.mapped().deadline_timer != 0) Cancel(node.mapped().deadline_timer);
  if (node.mapped().phase_timer != 0) Cancel(node.mapped().phase_timer);
  curl_multi_remove_handle(multi_.get(), easy);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  node.mapped().done(code);
}

void FetchEngine::Impl::RunDueTimers() {
  const absl::Time now = absl::Now();
  for (;;) {
    async::Task task;
    {
      absl::MutexLock lock(&mu_);
      while (!due_.empty() && timers_.count(due_.top().id) == 0) due_.pop();
      if (due_.empty() || due_.top().when > now) return;
      auto it = timers_.find(due_.top().id);
      due_.pop();
      task = std::move(it->second);
      timers_.erase(it);
    }
    task();
  }
}

void FetchEngine::Impl::RunPosted() {
  std::deque<async::Task> tasks;
  {
    absl::MutexLock lock(&mu_);
    tasks.swap(posted_);
  }
  for (async::Task& t : tasks) t();
}

void FetchEngine::Impl::AddOnLoop(CURL* easy, absl::Time deadline, Phases phases,
                                  Done done) {
  if (closing_ || multi_ == nullptr) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    done(CURLE_ABORTED_BY_CALLBACK);
    return;
  }
  if (curl_multi_add_handle(multi_.get(), easy) != CURLM_OK) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    done(CURLE_FAILED_INIT);
    return;
  }
  Running& running = transfers_[easy];
  running.done = std::move(done);
  running.added = absl::Now();
  running.phases = phases;
  if (deadline != absl::InfiniteFuture()) {
    running.deadline_timer =
        RunAt(deadline, [this, easy] { Complete(easy, CURLE_OPERATION_TIMEDOUT); });
  }
  const absl::Duration first =
      std::min({phases.connect, phases.tls_handshake, phases.request});
  if (first != absl::InfiniteDuration()) {
    // No phase can be overdue before the shorter budget has passed once.
    running.phase_timer = RunAt(running.added + first, [this, easy] { CheckPhases(easy); });
  }
}

void FetchEngine::Impl::CheckPhases(CURL* easy) {
  auto it = transfers_.find(easy);
  if (it == transfers_.end()) return;
  Running& running = it->second;
  running.phase_timer = 0;
  const absl::Time now = absl::Now();
  const Phases& phases = running.phases;
  absl::Time due;
  if (running.connecting == absl::InfiniteFuture()) {
    // Still queued for a connection slot: no phase has begun.
    due = now + std::min({phases.connect, phases.tls_handshake, phases.request});
    if (due != absl::InfiniteFuture()) {
      running.phase_timer = RunAt(due, [this, easy] { CheckPhases(easy); });
    }
    return;
  }
  const absl::Time request_due = running.connecting + phases.request;
  if (request_due <= now) return Complete(easy, kRequestOverrun);
  curl_off_t handshaken_us = 0;
  curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &handshaken_us);
  if (handshaken_us > 0) {
    // Connected and handshaken: only the request's budget is left to watch.
    due = request_due;
  } else if (running.connected == absl::InfiniteFuture()) {
    // Connecting: the connection is due `connect` after the attempt began,
    // and a handshake that starts later cannot be overdue before now + its
    // budget.
    const absl::Time connect_due = running.connecting + running.phases.connect;
    if (connect_due <= now) return Complete(easy, kConnectOverrun);
    due = std::min({connect_due, now + running.phases.tls_handshake, request_due});
  } else {
    const absl::Time handshake_due = running.connected + running.phases.tls_handshake;
    if (handshake_due <= now) return Complete(easy, kHandshakeOverrun);
    due = std::min(handshake_due, request_due);
  }
  if (due == absl::InfiniteFuture()) return;
  running.phase_timer = RunAt(due, [this, easy] { CheckPhases(easy); });
}

void FetchEngine::Impl::InstallChannel(Channel channel) {
  if (closing_) return;  // the new channel dies unused
  // Lookups still on the old channel end with ARES_EDESTRUCTION.
  std::swap(channel_, channel);
}

void FetchEngine::Impl::Shutdown() {
  closing_ = true;
  // Transfers: removed, each callback told. A callback that starts another
  // transfer has it refused at once (closing_).
  while (!transfers_.empty()) {
    Complete(transfers_.begin()->first, CURLE_ABORTED_BY_CALLBACK);
  }
  // Lookups: every callback runs (ARES_ECANCELLED, then ARES_EDESTRUCTION
  // for anything a callback started meanwhile).
  if (channel_ != nullptr) {
    ares_cancel(channel_.get());
    channel_.reset();
  }
  // Timers at once, then posted tasks, until nothing more arrives; only then
  // is new work refused (and answered inline by the callers' threads).
  for (;;) {
    std::vector<async::Task> batch;
    {
      absl::MutexLock lock(&mu_);
      while (!due_.empty()) {
        auto it = timers_.find(due_.top().id);
        due_.pop();
        if (it == timers_.end()) continue;  // cancelled
        batch.push_back(std::move(it->second));
        timers_.erase(it);
      }
      while (!posted_.empty()) {
        batch.push_back(std::move(posted_.front()));
        posted_.pop_front();
      }
      if (batch.empty()) {
        stopped_ = true;
        break;
      }
    }
    for (async::Task& t : batch) t();
  }
  multi_.reset();
  sockets_.clear();
}

// --- FetchEngine ---

absl::StatusOr<std::unique_ptr<FetchEngine>> FetchEngine::Create(Options options) {
  if (!LibrariesReady()) {
    return absl::InternalError("libcurl or c-ares could not be initialised");
  }
  if (options.max_connections < 1 || options.max_connections_per_host < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fetch engine: max_connections (", options.max_connections,
        ") and max_connections_per_host (", options.max_connections_per_host,
        ") must be at least 1"));
  }
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  impl->Start();
  return std::unique_ptr<FetchEngine>(new FetchEngine(std::move(impl)));
}

FetchEngine::FetchEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FetchEngine::~FetchEngine() { Stop(); }

bool FetchEngine::Post(async::Task task) { return impl_->Post(std::move(task)); }

FetchEngine::TimerId FetchEngine::RunAt(absl::Time when, async::Task task) {
  return impl_->RunAt(when, std::move(task));
}

bool FetchEngine::Cancel(TimerId id) { return impl_->Cancel(id); }

void FetchEngine::AddTransfer(CURL* easy, absl::AnyInvocable<void(int curl_code)> done) {
  impl_->AddTransfer(easy, absl::InfiniteFuture(), Phases(), std::move(done));
}

void FetchEngine::AddTransfer(CURL* easy, absl::Time deadline,
                              absl::AnyInvocable<void(int curl_code)> done) {
  impl_->AddTransfer(easy, deadline, Phases(), std::move(done));
}

void FetchEngine::AddTransfer(CURL* easy, absl::Time deadline, Phases phases,
                              absl::AnyInvocable<void(int curl_code)> done) {
  impl_->AddTransfer(easy, deadline, phases, std::move(done));
}

void FetchEngine::WithDns(absl::AnyInvocable<void(void* channel)> start) {
  impl_->WithDns(std::move(start));
}

absl::Status FetchEngine::ConfigureDns(const std::string& servers,
                                       absl::Duration query_timeout, int tries,
                                       const std::string& resolv_conf) {
  return impl_->ConfigureDns(servers, query_timeout, tries, resolv_conf);
}

bool FetchEngine::InLoop() const { return impl_->InLoop(); }

int FetchEngine::in_flight() const { return impl_->in_flight(); }

void FetchEngine::Stop() { impl_->Stop(); }

}  // namespace keyverifier::net
