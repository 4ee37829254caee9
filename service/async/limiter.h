// Limiter: at most `max` holders at once; whoever comes when all slots are
// taken leaves a task that runs, in arrival order, once a slot is given
// back. No thread waits. The caller decides where the next task runs (at
// once, or posted so that chains of releases do not grow the stack).
// Thread-safe.
#ifndef KEYVERIFIER_SERVICE_ASYNC_LIMITER_H_
#define KEYVERIFIER_SERVICE_ASYNC_LIMITER_H_

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "service/async/callback.h"

namespace keyverifier::async {

class Limiter {
 public:
  explicit Limiter(int max) : max_(std::max(1, max)) {}

  // True: the caller holds a slot now (and `later` is untouched). False:
  // `later` is queued and will hold the slot it is given when it runs.
  bool Acquire(Task& later) {
    absl::MutexLock lock(&mu_);
    if (active_ < max_) {
      ++active_;
      return true;
    }
    waiting_.push_back(std::move(later));
    return false;
  }
  // Gives a slot back. Returns the next waiting task, which now holds that
  // slot and must be run, or an empty task.
  Task Release() {
    absl::MutexLock lock(&mu_);
    if (waiting_.empty()) {
      --active_;
      return nullptr;
    }
    Task next = std::move(waiting_.front());
    waiting_.pop_front();
    return next;
  }
  // No holder and nobody waiting.
  bool idle() {
    absl::MutexLock lock(&mu_);
    return active_ == 0 && waiting_.empty();
  }

 private:
  const int max_;
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Task> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::async

#endif  // KEYVERIFIER_SERVICE_ASYNC_LIMITER_H_
