// Refresher: keeps the keys of servers recently asked about fresh, so that
// lookups are answered from memory.
//
// A server is due at about half the remaining useful life of its latest
// response (fetched + (valid_until - fetched) / 2, minus random jitter), as
// the spec asks of notaries; never sooner than min_interval after its last
// fetch; after a failure it backs off exponentially. Servers not asked about
// for `forget_after` stop being refreshed; at most `max_tracked`, the most
// recently asked first. Due servers are refreshed in batches of
// `concurrency`, each batch fetched together (grouped into notary requests).
//
// RunOnce does one pass (tests call it with a fake clock; it never sleeps);
// Start runs passes every `interval` on a background thread until Stop,
// which joins it. Thread-safe. The keyring, clock and observer are borrowed.
#ifndef KEYVERIFIER_SERVICE_KEYRING_REFRESHER_H_
#define KEYVERIFIER_SERVICE_KEYRING_REFRESHER_H_

#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "service/clock/clock.h"
#include "service/keyring/fetching_keyring.h"
#include "service/observe/observer.h"

namespace keyverifier::keyring {

class Refresher {
 public:
  struct Options {
    absl::Duration interval = absl::Seconds(30);
    int concurrency = 64;
    absl::Duration min_interval = absl::Minutes(5);
    double jitter = 0.1;  // of the time until due, taken off at random
    absl::Duration backoff_initial = absl::Minutes(1);
    absl::Duration backoff_max = absl::Hours(1);
    absl::Duration forget_after = absl::Hours(24 * 7);
    size_t max_tracked = 10000;
    absl::Duration fetch_timeout = absl::Seconds(30);
  };
  struct Pass {
    int refreshed = 0;
    int failed = 0;
    size_t tracked = 0;
    size_t backing_off = 0;
  };

  // `random` gives numbers in [0, 1) for the jitter (tests fix it).
  Refresher(FetchingKeyRing& ring, const Clock& clock, observe::Observer& observer,
            Options options, std::function<double()> random = nullptr);
  ~Refresher();

  Pass RunOnce();
  void Start();
  void Stop();

  // When `server` is next due (tests, diagnostics); InfiniteFuture if not
  // tracked.
  absl::Time DueTime(const core::ServerName& server);

 private:
  struct State {
    int failures = 0;
    absl::Time next_attempt = absl::InfinitePast();
    double jitter = 0;  // drawn once per response
    int64_t jitter_for_fetch = -1;
  };
  absl::Time Due(const core::ServerName& server, State& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  FetchingKeyRing& ring_;
  const Clock& clock_;
  observe::Observer& observer_;
  const Options options_;
  std::function<double()> random_;

  absl::Mutex mu_;
  absl::flat_hash_map<core::ServerName, State> state_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace keyverifier::keyring

#endif  // KEYVERIFIER_SERVICE_KEYRING_REFRESHER_H_
