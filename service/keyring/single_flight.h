// SingleFlight: concurrent calls for the same key share one execution.
//
// The first caller for a key runs `fn`; callers arriving while it runs wait
// for its result instead of running their own (1,000 concurrent lookups of a
// cold server make one outbound fetch). A waiter whose deadline passes first
// gets DeadlineExceededError; the shared call goes on for the others. Once
// the call finishes, the next caller starts a new one. Thread-safe.
#ifndef KEYVERIFIER_SERVICE_KEYRING_SINGLE_FLIGHT_H_
#define KEYVERIFIER_SERVICE_KEYRING_SINGLE_FLIGHT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace keyverifier::keyring {

template <typename T>
class SingleFlight {
 public:
  // `fn` runs on the first caller's thread.
  absl::StatusOr<T> Do(const std::string& key, absl::Time deadline,
                       const std::function<absl::StatusOr<T>()>& fn) {
    std::shared_ptr<Call> call;
    bool leader = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = calls_.find(key);
      if (it == calls_.end()) {
        call = std::make_shared<Call>();
        calls_.emplace(key, call);
        leader = true;
      } else {
        call = it->second;
      }
    }
    if (leader) {
      absl::StatusOr<T> result = fn();
      {
        absl::MutexLock lock(&mu_);
        calls_.erase(key);
      }
      absl::MutexLock lock(&call->mu);
      call->result = result;
      call->done = true;
      return result;
    }
    absl::MutexLock lock(&call->mu);
    ++call->waiters;
    if (!call->mu.AwaitWithDeadline(absl::Condition(&call->done), deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat("deadline passed while waiting for the lookup of ", key));
    }
    return call->result;
  }

  // Calls in progress (for tests and metrics).
  size_t in_flight() {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }
  // Callers that have waited (or are waiting) on the call under way for
  // `key`; 0 if none is.
  int waiters(const std::string& key) {
    std::shared_ptr<Call> call;
    {
      absl::MutexLock lock(&mu_);
      auto it = calls_.find(key);
      if (it == calls_.end()) return 0;
      call = it->second;
    }
    absl::MutexLock lock(&call->mu);
    return call->waiters;
  }

 private:
  struct Call {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    int waiters ABSL_GUARDED_BY(mu) = 0;
    absl::StatusOr<T> result ABSL_GUARDED_BY(mu) = absl::UnknownError("unset");
  };
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Call>> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::keyring

#endif  // KEYVERIFIER_SERVICE_KEYRING_SINGLE_FLIGHT_H_
