#include "service/keyring/refresher.h"

#include <algorithm>
#include <random>
#include <vector>

#include "absl/synchronization/notification.h"
#include "service/clock/backoff.h"
#include "service/core/verify_key.h"

namespace keyverifier::keyring {

Refresher::Refresher(FetchingKeyRing& ring, const Clock& clock, observe::Observer& observer,
                     Options options, std::function<double()> random)
    : ring_(ring), clock_(clock), observer_(observer), options_(options),
      random_(std::move(random)) {
  if (!random_) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    auto mu = std::make_shared<absl::Mutex>();
    random_ = [engine, mu] {
      absl::MutexLock lock(mu.get());
      return std::uniform_real_distribution<double>(0, 1)(*engine);
    };
  }
}

Refresher::~Refresher() { Stop(); }

absl::Time Refresher::Due(const core::ServerName& server, State& state) {
  FetchingKeyRing::Freshness f = ring_.FreshnessOf(server);
  if (f.fetched_ts == 0) return std::max(state.next_attempt, absl::InfinitePast());
  if (state.jitter_for_fetch != f.fetched_ts) {
    state.jitter = random_();
    state.jitter_for_fetch = f.fetched_ts;
  }
  const absl::Time fetched = absl::FromUnixMillis(f.fetched_ts);
  // The spec trusts a response at most 7 days ahead.
  const int64_t until = std::min(f.valid_until_ts, f.fetched_ts + core::kMaxKeyValidityMs);
  absl::Duration half = std::max(absl::ZeroDuration(), absl::Milliseconds(until - f.fetched_ts) / 2);
  absl::Time due = fetched + half - half * (options_.jitter * state.jitter);
  due = std::max(due, fetched + options_.min_interval);
  return std::max(due, state.next_attempt);
}

absl::Time Refresher::DueTime(const core::ServerName& server) {
  absl::MutexLock lock(&mu_);
  auto it = state_.find(server);
  if (it == state_.end()) return absl::InfiniteFuture();
  return Due(server, it->second);
}

Refresher::Pass Refresher::RunOnce() {
  const absl::Time now = clock_.Now();
  std::vector<std::pair<absl::Time, core::ServerName>> due;
  Pass pass;
  {
    std::vector<std::pair<core::ServerName, absl::Time>> asked = ring_.TrackedServers();
    std::vector<std::pair<absl::Time, core::ServerName>> recent;
    recent.reserve(asked.size());
    for (auto& [server, when] : asked) {
      if (now - when <= options_.forget_after) recent.push_back({when, std::move(server)});
    }
    if (recent.size() > options_.max_tracked) {  // the most recently asked
      std::nth_element(recent.begin(), recent.begin() + options_.max_tracked, recent.end(),
                       std::greater<>());
      recent.erase(recent.begin() + options_.max_tracked, recent.end());
    }
    absl::MutexLock lock(&mu_);
    absl::flat_hash_map<core::ServerName, State> kept;
    kept.reserve(recent.size());
    for (const auto& [when, server] : recent) {
      auto it = state_.find(server);
      kept[server] = it == state_.end() ? State{} : it->second;
    }
    state_ = std::move(kept);
    for (auto& [server, state] : state_) {
      absl::Time t = Due(server, state);
      if (t <= now) due.push_back({t, server});
    }
  }
  std::sort(due.begin(), due.end());

  // Due servers in batches of `concurrency`, each batch fetched together
  // (one notary request for all of it); this thread waits for each batch.
  int refreshed = 0, failed = 0;
  const size_t chunk = static_cast<size_t>(std::max(1, options_.concurrency));
  for (size_t begin = 0; begin < due.size(); begin += chunk) {
    std::vector<core::ServerName> servers;
    for (size_t i = begin; i < std::min(due.size(), begin + chunk); ++i) {
      servers.push_back(due[i].second);
    }
    absl::Notification batch_done;
    std::vector<absl::StatusOr<int64_t>> results;
    ring_.RefreshMany(servers, absl::Now() + options_.fetch_timeout,
                      [&](std::vector<absl::StatusOr<int64_t>> r) {
                        results = std::move(r);
                        batch_done.Notify();
                      });
    batch_done.WaitForNotification();
    for (size_t j = 0; j < servers.size(); ++j) {
      const absl::StatusOr<int64_t>& r = results[j];
      observer_.OnRefresh(r.ok() ? "ok" : "error", now - due[begin + j].first);
      absl::MutexLock lock(&mu_);
      auto it = state_.find(servers[j]);
      if (it == state_.end()) continue;
      if (r.ok()) {
        ++refreshed;
        it->second.failures = 0;
        it->second.next_attempt = absl::InfinitePast();
      } else {
        ++failed;
        State& st = it->second;
        ++st.failures;
        st.next_attempt =
            clock_.Now() + Backoff(st.failures, options_.backoff_initial, options_.backoff_max);
      }
    }
  }

  pass.refreshed = refreshed;
  pass.failed = failed;
  {
    absl::MutexLock lock(&mu_);
    pass.tracked = state_.size();
    for (const auto& [server, s] : state_) pass.backing_off += s.failures > 0;
  }
  observer_.OnRefresherState(pass.tracked, pass.backing_off);
  return pass;
}

void Refresher::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    for (;;) {
      RunOnce();
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.interval);
      if (stopping_) return;
    }
  });
}

void Refresher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace keyverifier::keyring
