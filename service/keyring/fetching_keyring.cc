#include "service/keyring/fetching_keyring.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/clock/backoff.h"
#include "service/core/server_name.h"

namespace keyverifier::keyring {
namespace {

// The store's rules refused a response (it is invalid, or a key id's bytes
// differ from the stored ones), as opposed to the store failing to write.
bool StoreRefused(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsInvalidArgument(s);
}

bool HasKey(const std::vector<store::StoredKey>& keys, const std::string& id) {
  return std::any_of(keys.begin(), keys.end(),
                     [&](const store::StoredKey& k) { return k.key.key_id == id; });
}

}  // namespace

// One caller waiting for a flight: answered exactly once, by the flight or
// by its deadline, whichever comes first.
struct FetchingKeyRing::Waiter {
  Waiter(KeyQuery query, async::Callback<KeyResult> done)
      : query(std::move(query)), done(std::move(done)) {}
  const KeyQuery query;
  async::Callback<KeyResult> done;
  bool retried = false;  // joined a second flight already
  absl::Mutex mu;
  bool answered ABSL_GUARDED_BY(mu) = false;
  std::optional<async::Scheduler::TimerId> timer ABSL_GUARDED_BY(mu);
};

FetchingKeyRing::FetchingKeyRing(store::KeyStore& store, fetch::KeySources* sources,
                                 async::Executor& executor, async::Scheduler& scheduler,
                                 const Clock& clock, observe::Observer& observer,
                                 Options options)
    : store_(store), sources_(sources), executor_(executor), scheduler_(scheduler),
      clock_(clock), observer_(observer), options_(options),
      new_servers_(options.new_servers_per_second, options.new_servers_burst) {
  store_.WatchChanges(this, [this](const std::vector<std::string>& servers) {
    OnStoreChanged(servers);
  });
}

FetchingKeyRing::~FetchingKeyRing() { store_.WatchChanges(this, nullptr); }

void FetchingKeyRing::OnStoreChanged(const std::vector<std::string>& servers) {
  // Only what memory holds and no flight is about to replace.
  std::vector<core::ServerName> reload;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& s : servers) {
      absl::StatusOr<core::ServerName> name = core::ServerName::Parse(s);
      if (name.ok() && entries_.contains(*name) && !flights_.contains(*name)) {
        reload.push_back(*std::move(name));
      }
    }
  }
  if (reload.empty()) return;
  (void)executor_.Post([this, reload = std::move(reload)] { Reload(reload); });
}

void FetchingKeyRing::Reload(const std::vector<core::ServerName>& servers) {
  for (const core::ServerName& server : servers) {
    absl::StatusOr<Entry> stored = LoadFromStore(server);
    if (!stored.ok()) continue;  // memory keeps what it had
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(server);
      if (it == entries_.end() || flights_.contains(server)) continue;
      const Entry& known = it->second;
      if (LatestFetch(stored->responses) < LatestFetch(known.responses)) continue;  // newer already
      KeepBookkeeping(known, *stored);
    }
    Remember(server, *std::move(stored), /*announced=*/true);
  }
}

std::optional<int64_t> FetchingKeyRing::Confirmed(const store::StoredKey& key) {
  // The store's last_seen_ts: the latest fetch of a response listing it.
  if (key.last_seen_ts <= 0) return std::nullopt;
  return key.last_seen_ts;
}

bool FetchingKeyRing::Answers(const std::vector<store::StoredKey>& keys,
                              const KeyQuery& query) {
  return KeysAnswer(
      keys, query, [](const store::StoredKey& k) -> const core::VerifyKey& { return k.key; },
      Confirmed);
}

KeyResult FetchingKeyRing::ToResult(const core::ServerName& server, const Entry& entry,
                                    KeySource source, bool include_raw_json) const {
  KeyResult r;
  r.server_name = server.str();
  r.source = std::move(source);
  for (const store::StoredKey& k : entry.keys) {
    core::VerifyKey& key = (k.is_old() ? r.old_verify_keys : r.verify_keys).emplace_back(k.key);
    key.confirmed_ts = Confirmed(k);
  }
  if (include_raw_json) {
    r.responses = entry.responses;
  }
  return r;
}

absl::StatusOr<FetchingKeyRing::Entry> FetchingKeyRing::LoadFromStore(
    const core::ServerName& server) {
  Entry e;
  absl::StatusOr<std::vector<store::StoredKey>> keys = store_.GetKeys(server.view());
  if (!keys.ok()) return keys.status();
  absl::StatusOr<std::vector<store::StoredResponse>> responses =
      store_.GetResponses(server.view());
  if (!responses.ok()) return responses.status();
  e.keys = *std::move(keys);
  e.responses = *std::move(responses);
  return e;
}

size_t FetchingKeyRing::Footprint(const Entry& entry) {
  size_t bytes = sizeof(Entry);
  for (const store::StoredResponse& r : entry.responses) {
    bytes += sizeof(r) + r.raw_json.capacity() + r.source.capacity() + r.server_name.capacity();
  }
  for (const store::StoredKey& k : entry.keys) {
    bytes += sizeof(k) + k.key.key_id.capacity() + k.server_name.capacity();
    for (const std::string& source : k.sources) bytes += sizeof(source) + source.capacity();
  }
  for (const auto& [id, miss] : entry.missing_ids) bytes += sizeof(miss) + 2 * id.capacity();
  return bytes;
}

void FetchingKeyRing::Remember(const core::ServerName& server, Entry entry, bool announced) {
  if (!announced) {
    entry.fetched_here_ts = std::max(entry.fetched_here_ts, LatestFetch(entry.responses));
  }
  // The MSC1711 fallback's index: the tls_fingerprints of the responses
  // remembered, by host (read here, outside the lock, not at every
  // handshake).
  std::vector<std::string> fingerprints;
  for (const store::StoredResponse& r : entry.responses) {
    for (std::string& fp : core::TlsFingerprints(r.raw_json)) {
      fingerprints.push_back(std::move(fp));
    }
  }
  entry.bytes = Footprint(entry);
  size_t servers = 0, bytes = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(server);
    if (it != entries_.end()) {
      entry.last_asked = std::max(entry.last_asked, it->second.last_asked);
      entries_bytes_ -= it->second.bytes;
    }
    entries_bytes_ += entry.bytes;
    entries_[server] = std::move(entry);
    if (fingerprints.empty()) {
      ForgetFingerprintsLocked(server);
    } else {
      fingerprints_[server.host()][server] = std::move(fingerprints);
    }
    EvictLocked(server);
    servers = entries_.size();
    bytes = entries_bytes_;
  }
  if (options_.report_memory) observer_.OnKeyringMemory(servers, bytes);
}

void FetchingKeyRing::ForgetFingerprintsLocked(const core::ServerName& server) {
  if (auto f = fingerprints_.find(server.host()); f != fingerprints_.end()) {
    f->second.erase(server);
    if (f->second.empty()) fingerprints_.erase(f);
  }
}

void FetchingKeyRing::EvictLocked(const core::ServerName& keep) {
  if (entries_.size() <= options_.max_servers && entries_bytes_ <= options_.max_bytes) return;
  std::vector<std::pair<absl::Time, core::ServerName>> by_age;
  by_age.reserve(entries_.size());
  for (const auto& [name, e] : entries_) {
    if (name != keep) by_age.push_back({e.last_asked, name});
  }
  std::sort(by_age.begin(), by_age.end());
  // Down by 1% of the bound that was exceeded, so that a flood of new names
  // does not sort the whole map at every insert.
  const size_t count_target = entries_.size() > options_.max_servers
                                  ? entries_.size() - std::max<size_t>(1, options_.max_servers / 100)
                                  : entries_.size();
  const size_t bytes_target =
      entries_bytes_ > options_.max_bytes ? options_.max_bytes - options_.max_bytes / 100
                                          : entries_bytes_;
  for (const auto& [asked, name] : by_age) {
    if (entries_.size() <= count_target && entries_bytes_ <= bytes_target) break;
    ForgetFingerprintsLocked(name);
    auto it = entries_.find(name);
    entries_bytes_ -= it->second.bytes;
    entries_.erase(it);
  }
}

FetchingKeyRing::WaiterPtr FetchingKeyRing::NewWaiter(KeyQuery query, absl::Time deadline,
                                                      async::Callback<KeyResult> done) {
  auto w = std::make_shared<Waiter>(std::move(query), std::move(done));
  if (deadline != absl::InfiniteFuture()) {
    std::weak_ptr<Waiter> weak = w;
    async::Scheduler::TimerId id = scheduler_.RunAt(deadline, [this, weak] {
      if (WaiterPtr w = weak.lock()) {
        Answer(w, absl::DeadlineExceededError(absl::StrCat(
                      "keys of ", w->query.server_name.str(),
                      " not obtained before the call's deadline; the fetch goes on")));
      }
    });
    absl::MutexLock lock(&w->mu);
    if (!w->answered) w->timer = id;
  }
  return w;
}

void FetchingKeyRing::Answer(const WaiterPtr& w, absl::StatusOr<KeyResult> r) {
  std::optional<async::Scheduler::TimerId> timer;
  {
    absl::MutexLock lock(&w->mu);
    if (w->answered) return;
    w->answered = true;
    timer = w->timer;
  }
  if (timer) scheduler_.Cancel(*timer);
  w->done(std::move(r));
}

void FetchingKeyRing::Join(std::vector<WaiterPtr> waiters, bool force) {
  const size_t waiters_count = waiters.size();
  std::vector<core::ServerName> start;
  {
    absl::MutexLock lock(&mu_);
    for (WaiterPtr& w : waiters) {
      auto [it, inserted] = flights_.try_emplace(w->query.server_name);
      if (inserted) start.push_back(w->query.server_name);
      it->second.force |= force;
      it->second.waiters.push_back(std::move(w));
    }
  }
  if (start.empty()) return;
  auto job = std::make_shared<Starting>();
  job->servers = start;
  job->now = clock_.Now();
  // A single caller's lookup goes ahead of batches being worked through.
  const bool single = waiters_count == 1 && !force;
  async::Task task = [this, job] { StartFlights(job); };
  if (!(single ? executor_.PostFirst(std::move(task)) : executor_.Post(std::move(task)))) {
    // Shutting down: nothing is fetched any more.
    for (const core::ServerName& server : start) {
      std::vector<WaiterPtr> stranded;
      {
        absl::MutexLock lock(&mu_);
        auto it = flights_.find(server);
        if (it == flights_.end()) continue;
        stranded = std::move(it->second.waiters);
        flights_.erase(it);
      }
      for (const WaiterPtr& w : stranded) {
        Answer(w, absl::CancelledError("the service is shutting down"));
      }
    }
  }
}

bool FetchingKeyRing::BackedOff(const Entry& entry, const KeyQuery& query, absl::Time now) {
  bool missing_any = false;
  for (const std::string& id : query.key_ids) {
    if (HasKey(entry.keys, id)) continue;
    missing_any = true;
    auto it = entry.missing_ids.find(id);
    const absl::Time until = it == entry.missing_ids.end()
                                 ? entry.unknown_ids.retry_after
                                 : std::max(it->second.retry_after, entry.unknown_ids.retry_after);
    if (until <= now) return false;
  }
  if (missing_any) return true;
  // Every key id is known: what is missing is validity.
  return entry.short_validity.retry_after > now;
}

void FetchingKeyRing::StartFlights(std::shared_ptr<Starting> job) {
  // In slices of kSlice servers, each its own task, so that a single
  // caller's lookup (posted first) waits for one slice at most.
  constexpr size_t kSlice = 32;
  const absl::Time now = job->now;
  std::vector<fetch::KeyQuery>& to_fetch = job->to_fetch;
  std::vector<core::ServerName> settled;
  const size_t end = std::min(job->servers.size(), job->next + kSlice);
  std::vector<core::ServerName> servers(job->servers.begin() + job->next,
                                        job->servers.begin() + end);
  job->next = end;
  for (const core::ServerName& server : servers) {
    absl::StatusOr<Entry> stored = LoadFromStore(server);
    Entry entry;
    std::vector<WaiterPtr> waiters;
    bool force = false;
    bool seen = false;
    bool other_done = false;
    int64_t remembered_ts = 0;  // the latest response this keyring knew of itself
    {
      absl::MutexLock lock(&mu_);
      if (job->recheck && !flights_.contains(server)) continue;
      if (auto it = entries_.find(server); it != entries_.end()) {
        entry = it->second;  // what memory had, if the store cannot be read
        seen = true;
        remembered_ts = entry.fetched_here_ts;
      }
      if (stored.ok()) {
        KeepBookkeeping(entry, *stored);
        entry = *std::move(stored);
      }
      entry.last_asked = now;
      Flight& flight = flights_[server];
      flight.store_read = stored.ok();
      waiters = flight.waiters;
      force = flight.force;
      other_done = flight.other_done;
      flight.entry = entry;
    }
    // What the waiters need beyond what is known, unless it is backing off.
    fetch::KeyQuery request(server);
    bool fetch = force;
    for (const WaiterPtr& w : waiters) {
      if (Answers(entry.keys, w->query)) continue;
      if (BackedOff(entry, w->query, now)) continue;
      fetch = true;
      for (const std::string& id : w->query.key_ids) {
        if (!HasKey(entry.keys, id) &&
            std::find(request.key_ids.begin(), request.key_ids.end(), id) ==
                request.key_ids.end()) {
          request.key_ids.push_back(id);
        }
      }
      request.minimum_valid_until_ts =
          std::max(request.minimum_valid_until_ts, w->query.minimum_valid_until_ts);
    }
    // A server whose fetch failed is not asked again before its backoff
    // ends, by callers or by a refresh.
    if (fetch && (sources_ == nullptr || now < entry.retry_after)) fetch = false;
    // Another replica fetched it meanwhile: what the store now has is the
    // answer. A refresh another replica already made (the store has a newer
    // response than memory had) is not made again.
    if (fetch && other_done) fetch = false;
    if (fetch && force && seen && stored.ok() && !options_.lease_holder.empty()) {
      for (const store::StoredResponse& r : entry.responses) {
        if (r.fetched_ts > remembered_ts) fetch = false;
      }
    }
    // A new name takes one token a flight: checking again while another
    // replica's lease runs is the same name, not another.
    if (fetch && !seen && stored.ok() && entry.keys.empty()) {
      absl::MutexLock lock(&mu_);
      Flight& flight = flights_[server];
      if (!flight.admitted && !new_servers_.TryTake(now)) {
        flight.throttled = true;
        fetch = false;
      } else {
        flight.admitted = true;
      }
    }
    if (!fetch) {
      settled.push_back(server);
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      Flight& flight = flights_[server];
      flight.request = request;
      if (flight.since == absl::InfinitePast()) flight.since = now;
    }
    to_fetch.push_back(std::move(request));
  }
  for (const core::ServerName& server : settled) FinishFlight(server, std::nullopt, nullptr);
  if (job->next < job->servers.size()) {
    if (executor_.Post([this, job] { StartFlights(job); })) return;
    while (job->next < job->servers.size()) StartFlights(job);  // stopping: finish here
    return;
  }
  if (to_fetch.empty()) return;
  if (!options_.lease_holder.empty()) {
    to_fetch = ClaimLeases(std::move(to_fetch), now);
    if (to_fetch.empty()) return;
  }
  sources_->FetchMany(
      std::move(to_fetch), now + options_.fetch_timeout,
      [this](absl::StatusOr<fetch::KeySources::ResultsByServer> results) {
        if (!results.ok()) return;  // FetchMany answers per server, never fails whole
        auto finishing = std::make_shared<Finishing>();
        for (auto& [server, r] : *results) finishing->results.emplace_back(server, std::move(r));
        // Off the fetch engine's thread: storing may wait on the disk.
        if (!executor_.Post([this, finishing] { FinishFlights(finishing); })) {
          while (finishing->next < finishing->results.size()) FinishFlights(finishing);
        }
      });
}

void FetchingKeyRing::KeepUnstored(const core::ServerName& server,
                                   const fetch::FetchResult& fetched, int64_t fetched_ts) {
  {
    absl::MutexLock lock(&mu_);
    std::pair<std::string, std::string> key(server.str(), SourceOf(server, fetched));
    auto [it, inserted] =
        unstored_.insert_or_assign(key, Unstored{server, fetched.keys, key.second, fetched_ts});
    if (inserted) unstored_order_.push_back(key);
    while (unstored_.size() > options_.max_unstored && !unstored_order_.empty()) {
      unstored_.erase(unstored_order_.front());
      unstored_order_.pop_front();
    }
  }
  ArmRetry(options_.write_retry);
}

void FetchingKeyRing::ArmRetry(absl::Duration delay) {
  {
    absl::MutexLock lock(&mu_);
    if (retry_armed_) return;
    retry_armed_ = true;
  }
  const absl::Time when = clock_.Now() + delay;
  scheduler_.RunAt(when, [this, when] {
    if (clock_.Now() < when) return;  // stopping: the queue is not written
    (void)executor_.Post([this] { RetryWrites(); });
  });
}

void FetchingKeyRing::RetryWrites() {
  constexpr size_t kBatch = 64;
  std::vector<std::pair<std::string, std::string>> keys;
  std::vector<Unstored> batch;
  {
    absl::MutexLock lock(&mu_);
    retry_armed_ = false;
    for (const auto& key : unstored_order_) {
      if (batch.size() == kBatch) break;
      auto it = unstored_.find(key);
      if (it == unstored_.end()) continue;
      keys.push_back(key);
      batch.push_back(it->second);
    }
  }
  if (batch.empty()) return;
  std::vector<store::ResponseWrite> writes;
  for (const Unstored& u : batch) writes.push_back({&u.keys, u.source});
  // Each answer keeps the time it was fetched.
  std::vector<absl::StatusOr<store::WriteResult>> written;
  for (size_t i = 0; i < batch.size(); ++i) {
    std::vector<absl::StatusOr<store::WriteResult>> one =
        store_.StoreResponses({writes[i]}, batch[i].fetched_ts);
    written.push_back(std::move(one[0]));
    if (!written.back().ok() && !StoreRefused(written.back().status())) break;  // still down
  }
  std::vector<core::ServerName> reload;
  bool more = false;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < written.size(); ++i) {
      const bool done = written[i].ok() || StoreRefused(written[i].status());
      if (!done) continue;
      auto it = unstored_.find(keys[i]);
      // Replaced by a newer answer meanwhile: that one still waits.
      if (it != unstored_.end() && it->second.fetched_ts == batch[i].fetched_ts) {
        unstored_.erase(it);
      }
      if (written[i].ok()) reload.push_back(batch[i].server);
    }
    while (!unstored_order_.empty() && unstored_.count(unstored_order_.front()) == 0) {
      unstored_order_.pop_front();
    }
    more = !unstored_.empty();
  }
  // Memory takes the store's merge of what was written.
  if (!reload.empty()) Reload(reload);
  if (!more) return;
  // What was written went through: go on at once; else wait for the store.
  const bool progress = !written.empty() && (written[0].ok() || StoreRefused(written[0].status()));
  ArmRetry(progress ? absl::ZeroDuration() : options_.write_retry);
}

size_t FetchingKeyRing::UnstoredCount() {
  absl::MutexLock lock(&mu_);
  return unstored_.size();
}

std::vector<fetch::KeyQuery> FetchingKeyRing::ClaimLeases(std::vector<fetch::KeyQuery> wanted,
                                                          absl::Time now) {
  // Flights are claimed in groups by when they began to need a fetch (a
  // holder's fetch that finished since then answers them).
  std::map<absl::Time, std::vector<size_t>> by_since;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < wanted.size(); ++i) {
      auto it = flights_.find(wanted[i].server_name);
      by_since[it == flights_.end() ? now : it->second.since].push_back(i);
    }
  }
  std::vector<fetch::KeyQuery> mine;
  std::vector<core::ServerName> held, done, failed;
  for (const auto& [since, indices] : by_since) {
    std::vector<core::ServerName> names;
    std::vector<std::string> servers;
    for (size_t i : indices) {
      names.push_back(wanted[i].server_name);
      servers.push_back(wanted[i].server_name.str());
    }
    absl::StatusOr<std::vector<store::FetchClaim>> claims = store_.ClaimFetches(
        servers, options_.lease_holder, absl::ToUnixMillis(since), absl::ToUnixMillis(now),
        absl::ToUnixMillis(now + options_.lease_time));
    for (size_t j = 0; j < indices.size(); ++j) {
      // The store cannot say: fetch rather than wait for nobody.
      const store::FetchClaim claim = claims.ok() ? (*claims)[j] : store::FetchClaim::kMine;
      const core::ServerName& server = names[j];
      switch (claim) {
        case store::FetchClaim::kMine: {
          absl::MutexLock lock(&mu_);
          if (auto it = flights_.find(server); it != flights_.end()) it->second.leased = claims.ok();
          mine.push_back(std::move(wanted[indices[j]]));
          break;
        }
        case store::FetchClaim::kHeld:
          held.push_back(server);
          break;
        case store::FetchClaim::kDone: {
          absl::MutexLock lock(&mu_);
          if (auto it = flights_.find(server); it != flights_.end()) it->second.other_done = true;
          done.push_back(server);
          break;
        }
        case store::FetchClaim::kFailed:
          failed.push_back(server);
          break;
      }
    }
  }
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (const core::ServerName& server : failed) {
    FinishFlight(server,
                 absl::StatusOr<fetch::FetchResult>(absl::UnavailableError(absl::StrCat(
                     "another replica's fetch of ", server.str(), " failed just now"))),
                 nullptr, now_ms);
  }
  if (!done.empty()) Restart(std::move(done), true);
  if (!held.empty()) {
    const absl::Time when = now + options_.lease_poll;
    scheduler_.RunAt(when, [this, when, held = std::move(held)]() mutable {
      if (clock_.Now() < when) {
        // Run early: the service is stopping. Nothing more is fetched.
        for (const core::ServerName& server : held) {
          FinishFlight(server,
                       absl::StatusOr<fetch::FetchResult>(
                           absl::CancelledError("the service is shutting down")),
                       nullptr, 0);
        }
        return;
      }
      Restart(std::move(held), true);
    });
  }
  return mine;
}

void FetchingKeyRing::Restart(std::vector<core::ServerName> servers, bool recheck) {
  auto job = std::make_shared<Starting>();
  job->servers = std::move(servers);
  job->now = clock_.Now();
  job->recheck = recheck;
  if (!executor_.Post([this, job] { StartFlights(job); })) {
    while (job->next < job->servers.size()) StartFlights(job);  // stopping: finish here
  }
}

std::string FetchingKeyRing::SourceOf(const core::ServerName& server,
                                      const fetch::FetchResult& fetched) {
  return fetched.sources.empty() || fetched.sources[0] == "origin" ? server.str()
                                                                    : fetched.sources[0];
}

store::StoredResponse FetchingKeyRing::ResponseOf(const core::ServerName& server,
                                                 const fetch::FetchResult& fetched,
                                                 int64_t fetched_ts) {
  store::StoredResponse r;
  r.server_name = server.str();
  r.source = SourceOf(server, fetched);
  r.fetched_ts = fetched_ts;
  r.valid_until_ts = fetched.keys.valid_until_ts;
  r.raw_json = fetched.keys.raw_json;
  return r;
}

int64_t FetchingKeyRing::LatestFetch(const std::vector<store::StoredResponse>& responses) {
  int64_t latest = 0;
  for (const store::StoredResponse& r : responses) latest = std::max(latest, r.fetched_ts);
  return latest;
}

void FetchingKeyRing::KeepBookkeeping(const Entry& from, Entry& into) {
  into.failures = from.failures;
  into.retry_after = from.retry_after;
  into.last_asked = from.last_asked;
  into.missing_ids = from.missing_ids;
  into.short_validity = from.short_validity;
  into.unknown_ids = from.unknown_ids;
  into.fetched_here_ts = from.fetched_here_ts;
}

void FetchingKeyRing::PutResponse(Entry& entry, store::StoredResponse response) {
  auto& responses = entry.responses;
  responses.erase(std::remove_if(responses.begin(), responses.end(),
                                 [&](const store::StoredResponse& r) {
                                   return r.source == response.source;
                                 }),
                  responses.end());
  // Most recently fetched first, as the store lists them.
  responses.insert(responses.begin(), std::move(response));
}

absl::Status FetchingKeyRing::Persisted(const core::ServerName& server,
                                        const fetch::FetchResult& fetched,
                                        const absl::StatusOr<store::WriteResult>& written,
                                        int64_t fetched_ts, Entry& entry, bool* unstored) {
  if (!written.ok()) {
    if (auto id = written.status().GetPayload(store::kConflictingKeyId)) {
      observer_.OnKeyConflict(server.view(), std::string(*id), "refused");
    }
    if (StoreRefused(written.status())) return written.status();
    // The store failed: the fetched keys are served from memory and written
    // again when the store is back (KeepUnstored).
    *unstored = true;
    return absl::OkStatus();
  }
  for (const std::string& id : written->vanished_keys) observer_.OnKeyVanished(server.view(), id);
  for (const std::string& id : written->rebound_keys) {
    observer_.OnKeyConflict(server.view(), id, "rebound");
  }
  entry.keys = written->keys;
  if (written->response_stored) {
    PutResponse(entry, ResponseOf(server, fetched, fetched_ts));
  }
  return absl::OkStatus();
}

void FetchingKeyRing::FinishFlights(std::shared_ptr<Finishing> job) {
  // kStoreBatch answers per task, stored in one write (one commit): a batch
  // costs few commits, another flight's write never waits long for the
  // store's lock, a single caller's task (posted first) waits for one slice
  // at most, and the first callers are answered early.
  constexpr size_t kStoreBatch = 64;
  const size_t begin = job->next;
  const size_t end = std::min(job->results.size(), begin + kStoreBatch);
  job->next = end;
  std::vector<store::ResponseWrite> writes;
  std::vector<size_t> written_index;
  for (size_t i = begin; i < end; ++i) {
    const core::ServerName& server = job->results[i].first;
    absl::StatusOr<fetch::FetchResult>& r = job->results[i].second;
    if (!r.ok()) continue;
    if (r->keys.server_name != server.str()) {
      r = absl::UnavailableError(absl::StrCat("asked for the keys of ", server.str(),
                                              ", got those of ", r->keys.server_name));
      continue;
    }
    writes.push_back({&r->keys, SourceOf(server, *r)});
    written_index.push_back(i);
  }
  const int64_t fetched_ts = clock_.NowMs();
  std::vector<absl::StatusOr<store::WriteResult>> written =
      writes.empty() ? std::vector<absl::StatusOr<store::WriteResult>>()
                     : store_.StoreResponses(writes, fetched_ts);
  std::map<size_t, const absl::StatusOr<store::WriteResult>*> written_for;
  for (size_t w = 0; w < written.size(); ++w) written_for[written_index[w]] = &written[w];
  if (!options_.lease_holder.empty()) {
    // After the write, so that a replica told the fetch is done finds it.
    std::vector<std::pair<std::string, bool>> released;
    {
      absl::MutexLock lock(&mu_);
      for (size_t i = begin; i < end; ++i) {
        auto it = flights_.find(job->results[i].first);
        if (it == flights_.end() || !it->second.leased) continue;
        auto w = written_for.find(i);
        released.emplace_back(job->results[i].first.str(),
                              job->results[i].second.ok() && w != written_for.end() &&
                                  w->second->ok());
      }
    }
    if (!released.empty()) {
      // Done now, after the commit: a replica whose need began later than
      // that read the store after it.
      (void)store_.ReleaseFetches(released, options_.lease_holder, clock_.NowMs());
    }
  }
  for (size_t i = begin; i < end; ++i) {
    auto w = written_for.find(i);
    FinishFlight(job->results[i].first, std::move(job->results[i].second),
                 w == written_for.end() ? nullptr : w->second, fetched_ts);
  }
  if (job->next < job->results.size() && !executor_.Post([this, job] { FinishFlights(job); })) {
    while (job->next < job->results.size()) FinishFlights(job);  // stopping: finish here
  }
}

void FetchingKeyRing::FinishFlight(const core::ServerName& server,
                                   std::optional<absl::StatusOr<fetch::FetchResult>> fetched,
                                   const absl::StatusOr<store::WriteResult>* written,
                                   int64_t fetched_ts) {
  const absl::Time now = clock_.Now();
  Entry entry;
  fetch::KeyQuery request(server);  // nothing asked, unless a fetch was made
  bool store_read = true;
  bool throttled = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(server);
    if (it == flights_.end()) return;
    entry = std::move(it->second.entry);
    if (it->second.request) request = *it->second.request;
    store_read = it->second.store_read;
    throttled = it->second.throttled;
  }
  KeySource source{KeySource::Kind::kCache, ""};
  absl::Status error;
  bool unstored = false;
  if (!fetched && throttled) {
    error = absl::ResourceExhaustedError(absl::StrCat(
        "too many server names never seen before; ", server.str(), " is not fetched now (at most ",
        options_.new_servers_per_second, " new names a second)"));
  } else if (!fetched) {
    error = absl::NotFoundError(
        sources_ == nullptr
            ? absl::StrCat("no keys known for ", server.str(), " and no key sources configured")
            : absl::StrCat("no keys known for ", server.str(), "; fetching is backing off until ",
                           absl::FormatTime(std::max(entry.retry_after,
                                                     entry.short_validity.retry_after))));
  } else {
    absl::StatusOr<fetch::FetchResult>& r = *fetched;
    if (r.ok()) {
      const absl::StatusOr<store::WriteResult> none = absl::InternalError("not stored");
      if (absl::Status s = Persisted(server, *r, written != nullptr ? *written : none,
                                     fetched_ts, entry, &unstored);
          !s.ok()) {
        // Refused: known keys stay as they were, the refused ones are not served.
        r = absl::UnavailableError(
            absl::StrCat("the key store refused the fetched keys: ", s.message()));
      }
    }
    if (r.ok()) {
      entry.failures = 0;
      entry.retry_after = absl::InfinitePast();
      const std::string& first = r->sources.empty() ? "origin" : r->sources[0];
      source = first == "origin" ? KeySource{KeySource::Kind::kOrigin, ""}
                                 : KeySource{KeySource::Kind::kNotary, first};
      // What was asked and not given is a miss of its own, backed off.
      bool lacked = false;
      for (const std::string& id : request.key_ids) {
        if (HasKey(entry.keys, id)) {
          entry.missing_ids.erase(id);
          continue;
        }
        lacked = true;
        Miss& m = entry.missing_ids[id];
        ++m.count;
        m.retry_after = now + Backoff(m.count, options_.miss_backoff_initial,
                                      options_.miss_backoff_max);
      }
      if (lacked) {
        ++entry.unknown_ids.count;
        entry.unknown_ids.retry_after = now + Backoff(entry.unknown_ids.count,
                                                      options_.miss_backoff_initial,
                                                      options_.miss_backoff_max);
      } else if (!request.key_ids.empty()) {
        entry.unknown_ids = Miss{};
      }
      // What the answer is usable until: its valid_until_ts, at most 7 days
      // from now.
      const int64_t usable = std::min(r->keys.valid_until_ts,
                                      absl::ToUnixMillis(now) + core::kMaxKeyValidityMs);
      if (request.minimum_valid_until_ts > usable) {
        ++entry.short_validity.count;
        entry.short_validity.retry_after =
            now + Backoff(entry.short_validity.count, options_.miss_backoff_initial,
                          options_.miss_backoff_max);
      } else if (request.minimum_valid_until_ts > 0) {
        entry.short_validity = Miss{};
      }
    } else {
      error = r.status();
      if (!absl::IsCancelled(error)) {  // shutdown says nothing about the server
        entry.failures += 1;
        entry.retry_after = now + Backoff(entry.failures, options_.failure_backoff_initial,
                                          options_.failure_backoff_max);
      }
    }
  }
  if (!store_read && absl::IsNotFound(error)) {
    error = absl::UnavailableError(absl::StrCat("key store unreadable for ", server.str()));
  }
  std::vector<WaiterPtr> waiters;
  {
    absl::MutexLock lock(&mu_);
    // Only this call ends the flight (found above); kept safe regardless.
    if (auto it = flights_.find(server); it != flights_.end()) {
      waiters = std::move(it->second.waiters);
      flights_.erase(it);
    }
  }
  if (unstored) {
    // Served from memory until the store takes it: the keys the store does
    // not know yet join the known ones (a known key id keeps its key, as the
    // store's merge would have it), the answer replaces its source's.
    const fetch::FetchResult& r = **fetched;
    const int64_t now_ms = absl::ToUnixMillis(now);
    for (const core::VerifyKey& k : r.keys.AllKeys()) {
      if (HasKey(entry.keys, k.key_id)) continue;
      store::StoredKey sk;
      sk.server_name = server.str();
      sk.key = k;
      sk.first_seen_ts = sk.last_seen_ts = now_ms;
      entry.keys.push_back(std::move(sk));
    }
    PutResponse(entry, ResponseOf(server, r, now_ms));
    KeepUnstored(server, r, now_ms);
  }
  Remember(server, entry);
  std::vector<WaiterPtr> again;
  for (const WaiterPtr& w : waiters) {
    const bool answered = Answers(entry.keys, w->query);
    // A waiter that joined after the fetch was asked for, with a need the
    // fetch did not cover, gets a flight of its own (once).
    if (!answered && fetched && !w->retried) {
      bool covered = w->query.minimum_valid_until_ts <= request.minimum_valid_until_ts;
      for (const std::string& id : w->query.key_ids) {
        covered &= HasKey(entry.keys, id) ||
                   std::find(request.key_ids.begin(), request.key_ids.end(), id) !=
                       request.key_ids.end() ||
                   entry.missing_ids.count(id) > 0;
      }
      if (!covered) {
        w->retried = true;
        again.push_back(w);
        continue;
      }
    }
    if (answered || !entry.keys.empty()) {
      // Stale or not, the last good answer: the verifier's validity rules
      // decide whether these keys still verify what is asked.
      Answer(w, ToResult(server, entry, answered ? source : KeySource{KeySource::Kind::kCache, ""},
                         w->query.include_raw_json));
    } else if (!error.ok()) {
      Answer(w, error);
    } else {
      Answer(w, absl::NotFoundError(absl::StrCat(server.str(), " has no keys for ",
                                                 absl::StrJoin(w->query.key_ids, ", "))));
    }
  }
  if (!again.empty()) Join(std::move(again), false);
}

void FetchingKeyRing::GetKeys(const KeyQuery& query, absl::Time deadline,
                              async::Callback<KeyResult> done) {
  if (std::optional<KeyResult> known = TryGetKeysFromMemory(query)) return done(*std::move(known));
  observer_.OnKeyLookup(false);
  Join({NewWaiter(query, deadline, std::move(done))}, false);
}

void FetchingKeyRing::GetKeysEach(std::vector<KeyQuery> queries, absl::Time deadline,
                                  std::shared_ptr<const EachDone> each) {
  std::vector<WaiterPtr> misses;
  for (size_t i = 0; i < queries.size(); ++i) {
    if (std::optional<KeyResult> known = TryGetKeysFromMemory(queries[i])) {
      (*each)(i, *std::move(known));
      continue;
    }
    observer_.OnKeyLookup(false);
    misses.push_back(NewWaiter(std::move(queries[i]), deadline,
                               [each, i](absl::StatusOr<KeyResult> r) {
                                 (*each)(i, std::move(r));
                               }));
  }
  if (!misses.empty()) Join(std::move(misses), false);
}

std::optional<KeyResult> FetchingKeyRing::TryGetKeysFromMemory(const KeyQuery& query) {
  std::optional<KeyResult> r = FromMemory(query);
  if (r) observer_.OnKeyLookup(true);
  return r;
}

std::optional<KeyResult> FetchingKeyRing::FromMemory(const KeyQuery& query) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(query.server_name);
  if (it == entries_.end() || !Answers(it->second.keys, query)) return std::nullopt;
  it->second.last_asked = clock_.Now();
  return ToResult(query.server_name, it->second, {KeySource::Kind::kCache, ""},
                  query.include_raw_json);
}

void FetchingKeyRing::RefreshMany(
    const std::vector<core::ServerName>& servers, absl::Time deadline,
    absl::AnyInvocable<void(std::vector<absl::StatusOr<int64_t>>)> done) {
  auto fanin = async::Fanin<int64_t>::Create(servers.size(), std::move(done));
  std::vector<WaiterPtr> waiters;
  for (size_t i = 0; i < servers.size(); ++i) {
    KeyQuery query(servers[i]);
    query.include_raw_json = false;
    waiters.push_back(NewWaiter(
        std::move(query), deadline,
        [this, server = servers[i], known_ts = FreshnessOf(servers[i]).fetched_ts,
         slot = fanin->Slot(i)](absl::StatusOr<KeyResult> r) mutable {
          if (!r.ok()) return slot(r.status());
          // Fetched now, by this keyring, or by another one sharing the store
          // since this keyring last read it.
          const Freshness fresh = FreshnessOf(server);
          if (r->source.kind == KeySource::Kind::kCache && fresh.fetched_ts <= known_ts) {
            return slot(absl::UnavailableError(
                absl::StrCat("refreshing ", server.str(), " fetched nothing new")));
          }
          slot(fresh.valid_until_ts);
        }));
  }
  if (!waiters.empty()) Join(std::move(waiters), true);
}

absl::StatusOr<int64_t> FetchingKeyRing::RefreshAndWait(const core::ServerName& server,
                                                        absl::Time deadline) {
  return async::Wait<int64_t>([&](async::Callback<int64_t> cb) {
    RefreshMany({server}, deadline,
                [cb = std::move(cb)](std::vector<absl::StatusOr<int64_t>> r) mutable {
                  cb(std::move(r[0]));
                });
  });
}

int FetchingKeyRing::WaitersFor(const core::ServerName& server) {
  absl::MutexLock lock(&mu_);
  auto it = flights_.find(server);
  return it == flights_.end() ? 0 : static_cast<int>(it->second.waiters.size());
}

std::vector<std::string> FetchingKeyRing::TlsFingerprintsOf(absl::string_view host) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  auto it = fingerprints_.find(host);
  if (it == fingerprints_.end()) return out;
  for (const auto& [server, fps] : it->second) out.insert(out.end(), fps.begin(), fps.end());
  return out;
}

std::vector<std::pair<core::ServerName, absl::Time>> FetchingKeyRing::TrackedServers() {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<core::ServerName, absl::Time>> out;
  out.reserve(entries_.size());
  for (const auto& [server, e] : entries_) out.emplace_back(server, e.last_asked);
  return out;
}

FetchingKeyRing::Freshness FetchingKeyRing::FreshnessOf(const core::ServerName& server) {
  absl::MutexLock lock(&mu_);
  Freshness f;
  auto it = entries_.find(server);
  if (it == entries_.end()) return f;
  for (const store::StoredResponse& r : it->second.responses) {
    f.valid_until_ts = std::max(f.valid_until_ts, r.valid_until_ts);
    f.fetched_ts = std::max(f.fetched_ts, r.fetched_ts);
  }
  return f;
}

void FallbackKeyRing::GetKeys(const KeyQuery& query, absl::Time deadline,
                              async::Callback<KeyResult> done) {
  first_.GetKeys(query, deadline,
                 [this, query, deadline, done = std::move(done)](
                     absl::StatusOr<KeyResult> r) mutable {
                   if (absl::IsNotFound(r.status())) {
                     return second_.GetKeys(query, deadline, std::move(done));
                   }
                   done(std::move(r));
                 });
}

void FallbackKeyRing::GetKeysEach(std::vector<KeyQuery> queries, absl::Time deadline,
                                  std::shared_ptr<const EachDone> each) {
  // `first` answers at once (pinned keys); what it lacks goes to `second`
  // as one batch.
  std::vector<size_t> rest;
  for (size_t i = 0; i < queries.size(); ++i) {
    absl::StatusOr<KeyResult> r = first_.GetKeysAndWait(queries[i], deadline);
    if (absl::IsNotFound(r.status())) {
      rest.push_back(i);
    } else {
      (*each)(i, std::move(r));
    }
  }
  if (rest.empty()) return;
  std::vector<KeyQuery> second_queries;
  for (size_t i : rest) second_queries.push_back(std::move(queries[i]));
  second_.GetKeysEach(
      std::move(second_queries), deadline,
      std::make_shared<const EachDone>(
          [each, rest = std::move(rest)](size_t j, absl::StatusOr<KeyResult> r) {
            (*each)(rest[j], std::move(r));
          }));
}

}  // namespace keyverifier::keyring
