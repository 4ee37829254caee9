// WorkerPool: a fixed set of threads running tasks: the service's CPU-heavy
// verification, and the keyring's store work. No task may wait on the
// network.
//
// Bounded admission: TrySubmit refuses work when `max_queued` tasks are
// already waiting (the service turns that into RESOURCE_EXHAUSTED rather than
// queueing without limit). Post (async::Executor) always queues: it is for
// the continuation of work already admitted, which must not be dropped.
// Thread-safe. Stop() runs what is queued, then joins the threads.
#ifndef KEYVERIFIER_SERVICE_ASYNC_WORKER_POOL_H_
#define KEYVERIFIER_SERVICE_ASYNC_WORKER_POOL_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "service/async/callback.h"

namespace keyverifier::async {

class WorkerPool final : public Executor {
 public:
  // `name` names the threads (top -H, perf; at most 15 characters).
  // Errors: InvalidArgumentError for threads < 1 or max_queued < 1.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(
      int threads, int max_queued, std::string name = "kv-verify");
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False when the queue is full or the pool is stopping. With `queued`,
  // also tells how many tasks wait (this one included when it was taken).
  bool TrySubmit(Task task, size_t* queued = nullptr);
  // The most tasks TrySubmit lets wait.
  int max_queued() const { return max_queued_; }
  // False only when the pool is stopping.
  bool Post(Task task) override;
  bool PostFirst(Task task) override;
  void Stop();

 private:
  explicit WorkerPool(int max_queued) : max_queued_(max_queued) {}
  void Run();

  const int max_queued_;
  absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace keyverifier::async

#endif  // KEYVERIFIER_SERVICE_ASYNC_WORKER_POOL_H_
