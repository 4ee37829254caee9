#include "service/async/worker_pool.h"

#include <pthread.h>

#include "absl/strings/str_cat.h"

namespace keyverifier::async {

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(int threads,
                                                               int max_queued,
                                                               std::string name) {
  if (threads < 1 || max_queued < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker pool needs threads >= 1 and max_queued >= 1, got ",
                     threads, " and ", max_queued));
  }
  std::unique_ptr<WorkerPool> pool(new WorkerPool(max_queued));
  for (int i = 0; i < threads; ++i) {
    pool->threads_.emplace_back([p = pool.get(), name] {
      // Named for top -H, perf and debuggers (at most 15 characters).
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      p->Run();
    });
  }
  return pool;
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::TrySubmit(Task task, size_t* queued) {
  absl::MutexLock lock(&mu_);
  if (queued != nullptr) *queued = queue_.size();
  if (stopping_ || static_cast<int>(queue_.size()) >= max_queued_) return false;
  queue_.push_back(std::move(task));
  if (queued != nullptr) *queued = queue_.size();
  return true;
}

bool WorkerPool::Post(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  queue_.push_back(std::move(task));
  return true;
}

bool WorkerPool::PostFirst(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  queue_.push_front(std::move(task));
  return true;
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Run() {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace keyverifier::async
