// WorkerPool: a fixed set of threads running CPU-heavy verification, so gRPC's
// own threads only hand work over and never block on crypto.
//
// Bounded: TrySubmit refuses work when `max_queued` tasks are already waiting,
// which the service turns into RESOURCE_EXHAUSTED rather than queueing without
// limit. Thread-safe. Stop() runs what is queued, then joins the threads.
#ifndef KEYVERIFIER_SERVICE_API_WORKER_POOL_H_
#define KEYVERIFIER_SERVICE_API_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace keyverifier::api {

class WorkerPool {
 public:
  // Errors: InvalidArgumentError for threads < 1 or max_queued < 1.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(int threads,
                                                            int max_queued);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False when the queue is full or the pool is stopping.
  bool TrySubmit(std::function<void()> task);
  void Stop();

 private:
  explicit WorkerPool(int max_queued) : max_queued_(max_queued) {}
  void Run();

  const int max_queued_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_WORKER_POOL_H_
