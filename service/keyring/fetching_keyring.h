// FetchingKeyRing: the service's keyring. Answers from memory when it can,
// else from the persistent store (another replica, or an earlier run, may
// have fetched the keys), else fetches through KeySources and stores what it
// got.
//
// A query is answered when every wanted key id is known and each wanted
// current key is valid until at least minimum_valid_until_ts (old keys stay
// usable for events before their expired_ts whatever the minimum); with no
// key ids, some current key must be. Otherwise the keyring fetches with that
// minimum.
//
// Asynchronous, with one flight per server: concurrent misses for a server
// share one store read and one fetch, and a batch (GetKeysEach, RefreshMany)
// starts every flight it needs at once, so KeySources asks a notary for all
// of them in one request. Store work and fetch results are handled on the
// `executor` (a fixed pool), never on the caller's thread nor the fetch
// engine's. A fetch runs under the keyring's own budget (fetch_timeout), not
// the caller's deadline: a caller whose deadline passes gets
// DeadlineExceededError (a timer on the `scheduler`), the fetch goes on, and
// its result answers later callers.
//
// Negative caching, so hostile or broken input cannot make us hammer a
// server: a server whose fetch failed is not fetched again before a backoff
// ends (failure_backoff_*, doubling); a key id a server's answer did not
// contain, and a minimum validity its answer did not reach, are not asked
// again within their own backoff (miss_backoff_*), and such an answer does
// not reset the key id's backoff; and while a server's answers keep lacking
// key ids asked for, no other unknown key id of it is fetched either within
// that backoff, so made-up key ids cost one fetch per window. A key id
// first seen after an answer that had everything asked (a key rotation) is
// fetched at once. Meanwhile, and whenever a fetch fails, the
// last known keys are served (keys are never forgotten), and only a server
// with no known keys at all gets an error.
//
// A flood of server names never seen before is fetched at a bounded rate
// (token bucket); names beyond it get ResourceExhaustedError and count as no
// failure of theirs.
//
// Servers asked about are tracked (bounded) for the background refresher.
//
// Sharing a store with other processes (replicas on one PostgreSQL): the
// keys another process writes reach this one's memory when the store
// announces them (WatchChanges), and fetch leases (Options::lease_holder)
// make each server fetched by one process at a time.
//
// Thread-safe. The store, sources (may be null: store only), executor,
// scheduler, clock and observer are borrowed. Errors: NotFoundError when no keys are known and
// there is nothing to fetch from (or fetching is backing off); the fetch's
// error (UnavailableError, DeadlineExceededError, AbortedError for
// disagreeing notaries, PermissionDeniedError) when nothing is known and the
// fetch failed; CancelledError at shutdown.
#ifndef KEYVERIFIER_SERVICE_KEYRING_FETCHING_KEYRING_H_
#define KEYVERIFIER_SERVICE_KEYRING_FETCHING_KEYRING_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "service/async/callback.h"
#include "service/clock/clock.h"
#include "service/clock/token_bucket.h"
#include "service/core/server_name.h"
#include "service/fetch/key_sources.h"
#include "service/keyring/keyring.h"
#include "service/observe/observer.h"
#include "service/store/key_store.h"

namespace keyverifier::keyring {

class FetchingKeyRing final : public KeyRing {
 public:
  struct Options {
    // A server whose fetch failed: first wait, doubling up to the maximum.
    absl::Duration failure_backoff_initial = absl::Minutes(1);
    absl::Duration failure_backoff_max = absl::Hours(1);
    // A key id (or minimum validity) a server's answer did not have.
    absl::Duration miss_backoff_initial = absl::Minutes(1);
    absl::Duration miss_backoff_max = absl::Hours(1);
    // The budget of one fetch (all sources), whatever the callers' deadlines.
    absl::Duration fetch_timeout = absl::Seconds(30);
    // Server names never seen before (not in memory nor the store) fetched
    // per second, with this burst: a flood of made-up names costs a bounded
    // amount of DNS and connections. Beyond it: ResourceExhaustedError.
    double new_servers_per_second = 100;
    double new_servers_burst = 2000;
    // Servers kept in memory and tracked for refreshing, at most, and the
    // bytes their keys and responses take in memory, at most; beyond either
    // the least recently asked are dropped (at least 1% at once, so a flood
    // of new names costs amortised constant time). The store still has
    // them.
    size_t max_servers = 100000;
    size_t max_bytes = size_t{256} << 20;
    // Fetched answers the store could not take (it was unreachable) are
    // kept in memory, served, and written again every write_retry until the
    // store takes them; at most max_unstored servers' answers wait (beyond
    // it the oldest is dropped from the queue, not from memory).
    absl::Duration write_retry = absl::Seconds(5);
    size_t max_unstored = 10000;
    // Fetch leases in the store, for replicas sharing one database: each
    // server is fetched by one holder at a time, and the others wait for its
    // result (checking every lease_poll) instead of fetching too; a server
    // another holder refreshed since this keyring last read it is not
    // refreshed again. A lease lasts lease_time (more than fetch_timeout),
    // so a holder that dies mid-fetch is replaced once it expires. Empty
    // holder (the default): no leases, for a store no other process shares.
    std::string lease_holder;
    absl::Duration lease_time = absl::Seconds(40);
    absl::Duration lease_poll = absl::Milliseconds(100);
    // Whether this keyring's size is the one the observer reports
    // (OnKeyringMemory): false for a second keyring beside the service's.
    bool report_memory = true;
  };

  FetchingKeyRing(store::KeyStore& store, fetch::KeySources* sources,
                  async::Executor& executor, async::Scheduler& scheduler, const Clock& clock,
                  observe::Observer& observer, Options options);

  ~FetchingKeyRing() override;

  void GetKeys(const KeyQuery& query, absl::Time deadline,
               async::Callback<KeyResult> done) override;
  void GetKeysEach(std::vector<KeyQuery> queries, absl::Time deadline,
                   std::shared_ptr<const EachDone> each) override;
  std::optional<KeyResult> TryGetKeysFromMemory(const KeyQuery& query) override;

  // Fetches the servers' keys now, whatever is cached (the refresher's
  // entry point), together; shares flights already under way. Each result
  // is the fetched response's valid_until_ts, or the error.
  void RefreshMany(const std::vector<core::ServerName>& servers, absl::Time deadline,
                   absl::AnyInvocable<void(std::vector<absl::StatusOr<int64_t>>)> done);
  absl::StatusOr<int64_t> RefreshAndWait(const core::ServerName& server, absl::Time deadline);

  // Servers asked about, with when they were last asked.
  std::vector<std::pair<core::ServerName, absl::Time>> TrackedServers();
  // What is known of a server: the latest valid_until_ts of its responses
  // and when it was last fetched (0 if never).
  struct Freshness {
    int64_t valid_until_ts = 0;
    int64_t fetched_ts = 0;
  };
  Freshness FreshnessOf(const core::ServerName& server);
  // The tls_fingerprints (raw SHA-256 digests) of the verified responses in
  // memory of the servers whose host is `host` (any port), for the MSC1711
  // certificate fallback: an index kept as responses enter and leave
  // memory, so a handshake reads a few entries, not every server.
  std::vector<std::string> TlsFingerprintsOf(absl::string_view host);
  // Callers waiting on the flight under way for `server` (tests, metrics).
  int WaitersFor(const core::ServerName& server);
  // Fetched answers waiting for the store to take them (it was unreachable).
  size_t UnstoredCount();

 private:
  struct Miss {
    int count = 0;
    absl::Time retry_after = absl::InfinitePast();
  };
  struct Entry {
    std::vector<store::StoredKey> keys;
    std::vector<store::StoredResponse> responses;
    absl::Time retry_after = absl::InfinitePast();
    int failures = 0;
    absl::Time last_asked = absl::InfinitePast();
    // Key ids the server's answers lacked, and a minimum validity they did
    // not reach: not asked again before retry_after.
    absl::flat_hash_map<std::string, Miss> missing_ids;
    Miss short_validity;
    // The server's last answers lacked key ids asked for: until
    // retry_after, no key id it has not shown is worth a fetch (made-up key
    // ids cost one fetch per window, and the window grows while they go on).
    Miss unknown_ids;
    size_t bytes = 0;  // what it takes in memory (Footprint), once remembered
    // The latest response this keyring fetched or read for a flight of its
    // own; responses another process announced (Reload) do not count, so a
    // refresh due by what this keyring knew is skipped when another process
    // made it meanwhile.
    int64_t fetched_here_ts = 0;
  };
  // About what an entry takes in memory: its responses' raw JSON, its keys
  // and the bookkeeping around them.
  static size_t Footprint(const Entry& entry);
  // Drops the least recently asked entries (never `keep`) until the bounds
  // hold. Caller holds mu_.
  void EvictLocked(const core::ServerName& keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct Waiter;
  using WaiterPtr = std::shared_ptr<Waiter>;
  struct Flight {
    std::vector<WaiterPtr> waiters;
    bool force = false;
    Entry entry;               // what memory and the store knew at the start
    bool store_read = true;    // false: the store could not be read
    bool throttled = false;    // a new name beyond the rate limit
    bool admitted = false;     // a new name that took its token (once a flight)
    std::optional<fetch::KeyQuery> request;  // what was fetched (if anything)
    // Leases: when this flight first needed a fetch; whether it holds the
    // server's lease; whether another holder fetched it meanwhile (the
    // store has the answer).
    absl::Time since = absl::InfinitePast();
    bool leased = false;
    bool other_done = false;
  };

  // When the last response listing `key` was fetched, if known.
  static std::optional<int64_t> Confirmed(const store::StoredKey& key);
  static bool Answers(const std::vector<store::StoredKey>& keys, const KeyQuery& query);
  KeyResult ToResult(const core::ServerName& server, const Entry& entry, KeySource source,
                     bool include_raw_json) const;
  std::optional<KeyResult> FromMemory(const KeyQuery& query);
  absl::StatusOr<Entry> LoadFromStore(const core::ServerName& server);
  // The store's verdict on a fetched answer (stored at `fetched_ts`),
  // applied to `entry`: the keys the write reports, and the answer in place
  // of its source's older one. Fails only when the store refused the
  // response by its rules (invalid, or a key id whose bytes differ from the
  // stored ones): it is never served. Any other store failure sets
  // *unstored: the keys answer this flight's callers without entering
  // memory.
  absl::Status Persisted(const core::ServerName& server, const fetch::FetchResult& fetched,
                         const absl::StatusOr<store::WriteResult>& written, int64_t fetched_ts,
                         Entry& entry, bool* unstored);
  static std::string SourceOf(const core::ServerName& server, const fetch::FetchResult& fetched);
  // When the latest of `responses` was fetched (0: none).
  static int64_t LatestFetch(const std::vector<store::StoredResponse>& responses);
  // What `into` (read from the store) keeps of `from` (memory's entry):
  // backoffs, misses, when it was asked, what this keyring fetched itself.
  static void KeepBookkeeping(const Entry& from, Entry& into);
  // Arms RetryWrites after `delay`, unless it is armed already.
  void ArmRetry(absl::Duration delay);
  // `response` in place of its source's in `entry` (the latest first).
  static void PutResponse(Entry& entry, store::StoredResponse response);
  // A fetched answer as the store keeps it.
  static store::StoredResponse ResponseOf(const core::ServerName& server,
                                          const fetch::FetchResult& fetched, int64_t fetched_ts);
  // Drops `server` from the fingerprint index. Caller holds mu_.
  void ForgetFingerprintsLocked(const core::ServerName& server)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `announced`: read because another process wrote it (fetched_here_ts is
  // kept as it was).
  void Remember(const core::ServerName& server, Entry entry, bool announced = false);
  // Queues an answer the store could not take, and arms the retry.
  void KeepUnstored(const core::ServerName& server, const fetch::FetchResult& fetched,
                    int64_t fetched_ts);
  // On the executor: writes what waits; what the store takes leaves the
  // queue, and memory gets the store's merge of it.
  void RetryWrites();
  // Another process sharing the store wrote these servers' keys: the ones
  // memory holds are read again (on the executor), so that lookups here see
  // them without a fetch.
  void OnStoreChanged(const std::vector<std::string>& servers);
  void Reload(const std::vector<core::ServerName>& servers);

  WaiterPtr NewWaiter(KeyQuery query, absl::Time deadline, async::Callback<KeyResult> done);
  void Answer(const WaiterPtr& w, absl::StatusOr<KeyResult> r);
  // Adds waiters to their servers' flights, starting the flights that are new.
  void Join(std::vector<WaiterPtr> waiters, bool force);
  // Flights being started: the store read in slices, then one fetch for all.
  struct Starting {
    std::vector<core::ServerName> servers;
    size_t next = 0;
    absl::Time now;
    std::vector<fetch::KeyQuery> to_fetch;
    bool recheck = false;  // flights waiting for another holder's fetch
  };
  // On the executor: read the store, answer what it can, fetch the rest.
  void StartFlights(std::shared_ptr<Starting> job);
  // Of the fetches `wanted`, those this keyring holds the lease for; the
  // others wait for their holder (rechecked later), read the store (the
  // holder's fetch is done) or fail (it failed).
  std::vector<fetch::KeyQuery> ClaimLeases(std::vector<fetch::KeyQuery> wanted, absl::Time now);
  // Starts `servers`' flights again (a recheck) on the executor.
  void Restart(std::vector<core::ServerName> servers, bool recheck);
  // A batch's fetch results being stored and answered, in slices.
  struct Finishing {
    std::vector<std::pair<core::ServerName, absl::StatusOr<fetch::FetchResult>>> results;
    size_t next = 0;
  };
  // On the executor: a slice of a batch's answers is stored in one write,
  // then each of its flights finishes; the rest goes on in a task of its own.
  void FinishFlights(std::shared_ptr<Finishing> job);
  // A flight's fetch is done (or there was none: `fetched` empty), with the
  // store's verdict on its answer (`written`, for a good one).
  void FinishFlight(const core::ServerName& server,
                    std::optional<absl::StatusOr<fetch::FetchResult>> fetched,
                    const absl::StatusOr<store::WriteResult>* written, int64_t fetched_ts = 0);
  // Whether every need of `query` that `entry` does not meet is in backoff.
  static bool BackedOff(const Entry& entry, const KeyQuery& query, absl::Time now);

  store::KeyStore& store_;
  fetch::KeySources* const sources_;
  async::Executor& executor_;
  async::Scheduler& scheduler_;
  const Clock& clock_;
  observe::Observer& observer_;
  const Options options_;

  absl::Mutex mu_;
  absl::flat_hash_map<core::ServerName, Entry> entries_ ABSL_GUARDED_BY(mu_);
  size_t entries_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // the entries' Footprint, summed
  absl::flat_hash_map<core::ServerName, Flight> flights_ ABSL_GUARDED_BY(mu_);
  // host -> server -> the tls_fingerprints of its remembered responses.
  absl::flat_hash_map<std::string,
                      absl::flat_hash_map<core::ServerName, std::vector<std::string>>>
      fingerprints_ ABSL_GUARDED_BY(mu_);
  TokenBucket new_servers_ ABSL_GUARDED_BY(mu_);
  // Answers waiting for the store, by server and source, oldest first.
  struct Unstored {
    core::ServerName server;
    core::ServerKeys keys;
    std::string source;
    int64_t fetched_ts = 0;
  };
  std::map<std::pair<std::string, std::string>, Unstored> unstored_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::string, std::string>> unstored_order_ ABSL_GUARDED_BY(mu_);
  bool retry_armed_ ABSL_GUARDED_BY(mu_) = false;
};

// Asks `first`; where it has nothing (NotFoundError), asks `second`. For the
// operator's pinned keys in front of the fetching keyring: `first` must answer
// (or say NotFound) without blocking, as TrustedKeyRing does.
class FallbackKeyRing final : public KeyRing {
 public:
  FallbackKeyRing(KeyRing& first, KeyRing& second) : first_(first), second_(second) {}
  void GetKeys(const KeyQuery& query, absl::Time deadline,
               async::Callback<KeyResult> done) override;
  void GetKeysEach(std::vector<KeyQuery> queries, absl::Time deadline,
                   std::shared_ptr<const EachDone> each) override;
  std::optional<KeyResult> TryGetKeysFromMemory(const KeyQuery& query) override {
    if (std::optional<KeyResult> r = first_.TryGetKeysFromMemory(query)) return r;
    return second_.TryGetKeysFromMemory(query);
  }

 private:
  KeyRing& first_;
  KeyRing& second_;
};

}  // namespace keyverifier::keyring

#endif  // KEYVERIFIER_SERVICE_KEYRING_FETCHING_KEYRING_H_
