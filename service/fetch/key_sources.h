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
// Asynchronous and batched: FetchMany asks each source once for every
// server still unanswered (a notary gets one POST per batch, the origin one
// concurrent fetch per server); a stage ends as soon as every server has a
// satisfying answer or every source of the stage has answered. No thread
// waits: callbacks run on the thread that completed the last answer. Answers
// arriving after their stage ended are counted and dropped.
//
// Thread-safe. Fetchers and the observer are borrowed and must outlive every
// fetch started (the fetch engine's Stop ends them all).
#ifndef KEYVERIFIER_SERVICE_FETCH_KEY_SOURCES_H_
#define KEYVERIFIER_SERVICE_FETCH_KEY_SOURCES_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
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

  using ResultsByServer = std::map<core::ServerName, absl::StatusOr<FetchResult>>;

  void Fetch(const KeyQuery& request, absl::Time deadline,
             async::Callback<FetchResult> done);
  // One result per distinct server of `requests`.
  void FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                 async::Callback<ResultsByServer> done);
  absl::StatusOr<FetchResult> FetchAndWait(const KeyQuery& request, absl::Time deadline) {
    return async::Wait<FetchResult>([&](auto cb) { Fetch(request, deadline, std::move(cb)); });
  }

 private:
  struct Batch;
  struct QuorumRun;
  KeySources(KeyFetcher* direct, std::vector<KeyFetcher*> notaries, Options options,
             const Clock& clock, observe::Observer& observer)
      : direct_(direct),
        notaries_(std::move(notaries)),
        options_(options),
        clock_(clock),
        observer_(observer) {}

  std::vector<std::vector<KeyFetcher*>> Stages() const;
  void RunStage(std::shared_ptr<Batch> batch, size_t stage);
  void Quorum(const KeyQuery& request, absl::Time deadline,
              async::Callback<FetchResult> done);
  void Report(const KeyFetcher* f, const absl::StatusOr<core::ServerKeys>& keys,
              const KeyQuery& request, absl::Duration took);

  KeyFetcher* const direct_;
  const std::vector<KeyFetcher*> notaries_;
  const Options options_;
  const Clock& clock_;
  observe::Observer& observer_;
};

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_KEY_SOURCES_H_
