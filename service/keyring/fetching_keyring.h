// FetchingKeyRing: the service's keyring. Answers from memory when it can,
// else from the persistent store (another replica, or an earlier run, may
// have fetched the keys), else fetches through KeySources and stores what it
// got.
//
// A query is answered when every wanted key id is known and each wanted
// current key is valid until at least minimum_valid_until_ts (old keys stay
// usable for events before their expired_ts whatever the minimum); with no
// key ids, some current key must be. Otherwise the keyring fetches with that
// minimum. Concurrent misses for one server share one fetch. A server whose
// fetch failed is not fetched again before a backoff (30 s doubling to 10
// min) ends; meanwhile, and whenever a fetch fails, the last known keys are
// served (keys are never forgotten), and only a server with no known keys at
// all gets the fetch's error.
//
// Servers asked about are tracked (bounded) for the background refresher.
//
// Thread-safe. The store, sources (may be null: store only), clock and
// observer are borrowed. Errors: InvalidArgumentError for a malformed server
// name; NotFoundError when no keys are known and there is nothing to fetch
// from; the fetch's error (UnavailableError, DeadlineExceededError,
// AbortedError for disagreeing notaries, PermissionDeniedError) when nothing
// is known and the fetch failed.
#ifndef KEYVERIFIER_SERVICE_KEYRING_FETCHING_KEYRING_H_
#define KEYVERIFIER_SERVICE_KEYRING_FETCHING_KEYRING_H_

#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "service/clock/clock.h"
#include "service/fetch/key_sources.h"
#include "service/keyring/keyring.h"
#include "service/keyring/single_flight.h"
#include "service/observe/observer.h"
#include "service/store/key_store.h"

namespace keyverifier::keyring {

class FetchingKeyRing final : public KeyRing {
 public:
  struct Options {
    absl::Duration failure_backoff_initial = absl::Seconds(30);
    absl::Duration failure_backoff_max = absl::Minutes(10);
    // Servers kept in memory and tracked for refreshing, at most; beyond it
    // the least recently asked 1% are dropped at once (the store still has
    // them), so a flood of new names costs amortised constant time.
    size_t max_servers = 100000;
  };

  FetchingKeyRing(store::KeyStore& store, fetch::KeySources* sources, const Clock& clock,
                  observe::Observer& observer, Options options);

  absl::StatusOr<KeyResult> GetKeys(const KeyQuery& query, absl::Time deadline) override;
  std::optional<KeyResult> TryGetKeysFromMemory(const KeyQuery& query) override;

  // Fetches the server's keys now, whatever is cached (the refresher's
  // entry point); shares a fetch already under way. Returns when the fetched
  // response is valid until, or the error.
  absl::StatusOr<int64_t> Refresh(absl::string_view server, absl::Time deadline);

  // Servers asked about, with when they were last asked.
  std::vector<std::pair<std::string, absl::Time>> TrackedServers();
  // What is known of a server: the latest valid_until_ts of its responses
  // and when it was last fetched (0 if never).
  struct Freshness {
    int64_t valid_until_ts = 0;
    int64_t fetched_ts = 0;
  };
  Freshness FreshnessOf(absl::string_view server);
  // The tls_fingerprints (raw SHA-256 digests) of the verified responses in
  // memory of the servers whose host is `host` (any port), for the MSC1711
  // certificate fallback.
  std::vector<std::string> TlsFingerprintsOf(absl::string_view host);
  // Callers waiting on the fetch under way for `server` (tests, metrics).
  int WaitersFor(absl::string_view server) { return flights_.waiters(std::string(server)); }

 private:
  struct Entry {
    std::vector<store::StoredKey> keys;
    std::vector<store::StoredResponse> responses;
    absl::Time retry_after = absl::InfinitePast();
    int failures = 0;
    absl::Time last_asked = absl::InfinitePast();
  };

  static bool Answers(const std::vector<store::StoredKey>& keys, const KeyQuery& query);
  KeyResult ToResult(const std::string& server, const Entry& entry, KeySource source,
                     bool include_raw_json) const;
  // TryGetKeysFromMemory without counting the lookup.
  std::optional<KeyResult> FromMemory(const KeyQuery& query);
  // Reads the server from the store into memory.
  absl::StatusOr<Entry> LoadFromStore(const std::string& server);
  // Puts a fetched answer into the store and memory; the answer for `query`.
  // Fails only when the store refuses the response by its rules (invalid, or
  // a key id whose bytes differ from the stored ones): it is never served,
  // and Miss treats it as a failed fetch. Any other store failure answers
  // with what was fetched.
  absl::StatusOr<KeyResult> Store(const std::string& server, fetch::FetchResult fetched,
                                  const KeyQuery& query, Entry entry);
  // The shared part of a miss: store, then fetch.
  absl::StatusOr<KeyResult> Miss(const KeyQuery& query, bool force, absl::Time deadline);
  void Remember(const std::string& server, Entry entry);
  void Touch(const std::string& server);

  store::KeyStore& store_;
  fetch::KeySources* const sources_;
  const Clock& clock_;
  observe::Observer& observer_;
  const Options options_;
  SingleFlight<KeyResult> flights_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// Asks `first`; where it has nothing (NotFoundError), asks `second`. For the
// operator's pinned keys in front of the fetching keyring: `first` must answer
// (or say NotFound) without blocking, as TrustedKeyRing does.
class FallbackKeyRing final : public KeyRing {
 public:
  FallbackKeyRing(KeyRing& first, KeyRing& second) : first_(first), second_(second) {}
  absl::StatusOr<KeyResult> GetKeys(const KeyQuery& query, absl::Time deadline) override {
    absl::StatusOr<KeyResult> r = first_.GetKeys(query, deadline);
    if (absl::IsNotFound(r.status())) return second_.GetKeys(query, deadline);
    return r;
  }
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
