// KeySources: which sources are asked for a server's keys, in which order,
// and what counts as an answer.
//
// Order (configurable): direct first, notaries first, or direct only; a
// source that fails or whose answer does not satisfy the request (key ids
// missing, not valid long enough) passes the request to the next. Notaries
// are asked concurrently, with one of two policies:
//  - any (quorum 1): the first satisfying answer wins;
//  - quorum N: at least N sources (the notaries, and the origin as well)
//    must report the same verify keys. Sources that answer with different
//    keys are a disagreement: an answer of its own (AbortedError saying who
//    reported what), logged and counted, never silently resolved.
// When nothing satisfies the request, the best answer obtained (valid
// longest) is returned, so that old keys stay answerable; only when no source
// answered at all is the result an error (UnavailableError listing every
// source's failure; NotFoundError when every source found no such server;
// DeadlineExceededError).
//
// Thread-safe. Fetchers and the observer are borrowed. Background notary
// calls still running when an answer is chosen finish within their deadline;
// the destructor waits for them.
#ifndef KEYVERIFIER_SERVICE_FETCH_KEY_SOURCES_H_
#define KEYVERIFIER_SERVICE_FETCH_KEY_SOURCES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/clock/clock.h"
#include "service/fetch/key_fetcher.h"
#include "service/observe/observer.h"

namespace keyverifier::fetch {

struct FetchResult {
  core::ServerKeys keys;
  // The sources behind the answer: "origin" and/or notary names. With a
  // quorum, every source that agreed.
  std::vector<std::string> sources;
  // Whether the answer satisfies the request (else it is the best there was).
  bool satisfies = false;
  // What the other sources said, for logs ("notary.example: HTTP 500").
  std::vector<std::string> failures;
};

class KeySources {
 public:
  enum class Order { kDirectFirst, kNotariesFirst, kDirectOnly };
  struct Options {
    Order order = Order::kDirectFirst;
    // 1: any notary. N > 1: N sources must agree.
    int quorum = 1;
  };

  // `direct` may be null only if there are notaries and the order is not
  // kDirectOnly.
  static absl::StatusOr<std::unique_ptr<KeySources>> Create(
      KeyFetcher* direct, std::vector<KeyFetcher*> notaries, Options options,
      const Clock& clock, observe::Observer& observer);
  ~KeySources();

  absl::StatusOr<FetchResult> Fetch(const KeyRequest& request, absl::Time deadline);

 private:
  KeySources(KeyFetcher* direct, std::vector<KeyFetcher*> notaries, Options options,
             const Clock& clock, observe::Observer& observer)
      : direct_(direct),
        notaries_(std::move(notaries)),
        options_(options),
        clock_(clock),
        observer_(observer) {}

  struct Answer {
    std::string source;
    absl::StatusOr<core::ServerKeys> keys;
  };
  // Asks `fetchers` concurrently; returns once `enough` says so or all have
  // answered (or the deadline passed).
  std::vector<Answer> AskConcurrently(
      const std::vector<KeyFetcher*>& fetchers, const KeyRequest& request,
      absl::Time deadline,
      const std::function<bool(const std::vector<Answer>&)>& enough);
  Answer AskOne(KeyFetcher* f, const KeyRequest& request, absl::Time deadline);
  absl::StatusOr<FetchResult> Quorum(const KeyRequest& request, absl::Time deadline);

  KeyFetcher* const direct_;
  const std::vector<KeyFetcher*> notaries_;
  const Options options_;
  const Clock& clock_;
  observe::Observer& observer_;

  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_KEY_SOURCES_H_
