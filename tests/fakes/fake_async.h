// Test doubles at the asynchronous seams: an executor that runs tasks on the
// caller's thread, and a scheduler whose timers fire only when a test says
// the time has come.
#ifndef KEYVERIFIER_TESTS_FAKES_FAKE_ASYNC_H_
#define KEYVERIFIER_TESTS_FAKES_FAKE_ASYNC_H_

#include <map>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/async/callback.h"

namespace keyverifier::testing {

// Runs every task at once, on the thread that posts it.
class InlineExecutor : public async::Executor {
 public:
  bool Post(async::Task task) override {
    task();
    return true;
  }
};

// Timers that fire when the test calls RunUntil (or RunAll); never on their
// own. Thread-safe.
class ManualScheduler : public async::Scheduler {
 public:
  TimerId RunAt(absl::Time when, async::Task task) override {
    absl::MutexLock lock(&mu_);
    const TimerId id = ++next_;
    timers_.emplace(id, std::make_pair(when, std::move(task)));
    return id;
  }
  bool Cancel(TimerId id) override {
    absl::MutexLock lock(&mu_);
    return timers_.erase(id) > 0;
  }
  // Runs (on this thread) every task due at or before `now`.
  void RunUntil(absl::Time now) {
    std::vector<async::Task> due;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = timers_.begin(); it != timers_.end();) {
        if (it->second.first <= now) {
          due.push_back(std::move(it->second.second));
          it = timers_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (async::Task& t : due) t();
  }
  void RunAll() { RunUntil(absl::InfiniteFuture()); }
  size_t pending() {
    absl::MutexLock lock(&mu_);
    return timers_.size();
  }

 private:
  absl::Mutex mu_;
  TimerId next_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<TimerId, std::pair<absl::Time, async::Task>> timers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_FAKES_FAKE_ASYNC_H_
