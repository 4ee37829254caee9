// Callbacks, executors and timers: the vocabulary of the service's
// asynchronous paths (fetch engine, key sources, keyring, gRPC handlers).
//
// An asynchronous operation takes a Callback<T> and invokes it exactly once:
// on the thread of whatever completed the operation (the fetch engine's loop,
// a keyring thread, or inline on the caller's thread when the answer is
// immediate). Callers therefore never hold a lock while starting an
// operation. Wait() turns an operation into a blocking call, for tools and
// tests only: no service thread waits on the network.
#ifndef KEYVERIFIER_SERVICE_ASYNC_CALLBACK_H_
#define KEYVERIFIER_SERVICE_ASYNC_CALLBACK_H_

#include <cstdint>
#include <optional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace keyverifier::async {

template <typename T>
using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

using Task = absl::AnyInvocable<void()>;

// Runs tasks on threads of its own. Thread-safe.
class Executor {
 public:
  virtual ~Executor() = default;
  // False when the executor is stopping: the task was not queued.
  virtual bool Post(Task task) = 0;
  // The same, ahead of the tasks already queued: for work a caller is
  // waiting on right now, while long jobs go on in slices behind it.
  virtual bool PostFirst(Task task) { return Post(std::move(task)); }
};

// Runs tasks at a time. Thread-safe. A task whose timer is cancelled before
// it ran never runs; stopping runs every pending task at once, so that
// nothing waiting on a timer is left unanswered.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  using TimerId = uint64_t;
  virtual TimerId RunAt(absl::Time when, Task task) = 0;
  // True if the task had not run yet and now never will.
  virtual bool Cancel(TimerId id) = 0;
};

// Joins N asynchronous results: Slot(i) is the callback of the i-th
// operation; once every slot has been called, `done` runs (on the thread of
// the last one) with the results in slot order. With n == 0, `done` runs
// inside Create.
template <typename T>
class Fanin {
 public:
  using Done = absl::AnyInvocable<void(std::vector<absl::StatusOr<T>>)>;
  static std::shared_ptr<Fanin> Create(size_t n, Done done) {
    std::shared_ptr<Fanin> f(new Fanin(n, std::move(done)));
    f->self_ = f;
    if (n == 0) f->done_(std::vector<absl::StatusOr<T>>());
    return f;
  }
  Callback<T> Slot(size_t i) {
    return [self = this->self(), i](absl::StatusOr<T> r) {
      bool last = false;
      {
        absl::MutexLock lock(&self->mu_);
        self->results_[i].emplace(std::move(r));
        last = --self->pending_ == 0;
      }
      if (!last) return;
      std::vector<absl::StatusOr<T>> all;
      all.reserve(self->results_.size());
      for (auto& r : self->results_) all.push_back(*std::move(r));
      self->done_(std::move(all));
    };
  }

 private:
  Fanin(size_t n, Done done) : pending_(n), results_(n), done_(std::move(done)) {}
  std::shared_ptr<Fanin> self() { return self_.lock(); }

  absl::Mutex mu_;
  size_t pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::optional<absl::StatusOr<T>>> results_;
  Done done_;
  std::weak_ptr<Fanin> self_;
};

// Starts `start(callback)` and waits for the callback's value. For tools and
// tests: it blocks the calling thread.
template <typename T, typename Start>
absl::StatusOr<T> Wait(Start&& start) {
  absl::Notification done;
  std::optional<absl::StatusOr<T>> result;
  std::forward<Start>(start)([&](absl::StatusOr<T> r) {
    result.emplace(std::move(r));
    done.Notify();
  });
  done.WaitForNotification();
  return *std::move(result);
}

}  // namespace keyverifier::async

#endif  // KEYVERIFIER_SERVICE_ASYNC_CALLBACK_H_
