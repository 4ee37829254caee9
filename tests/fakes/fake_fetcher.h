// A key source answering as scripted, counting calls; it can hold its
// answer until released, to test concurrency without sleeping.
#ifndef KEYVERIFIER_TESTS_FAKES_FAKE_FETCHER_H_
#define KEYVERIFIER_TESTS_FAKES_FAKE_FETCHER_H_

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "service/fetch/key_fetcher.h"

namespace keyverifier::testing {

// Answers as scripted; may hold its answer until released.
class ScriptedFetcher : public fetch::KeyFetcher {
 public:
  explicit ScriptedFetcher(std::string source) : source_(std::move(source)) {}
  const std::string& source() const override { return source_; }
  absl::StatusOr<core::ServerKeys> Fetch(const fetch::KeyRequest& request,
                                         absl::Time) override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      last_request_ = request;
    }
    if (hold_) release_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    auto it = by_server_.find(request.server_name);
    return it != by_server_.end() ? it->second : answer_;
  }
  // An answer for one server only (others get answer_).
  void SetFor(const std::string& server, absl::StatusOr<core::ServerKeys> answer) {
    absl::MutexLock lock(&mu_);
    by_server_.insert_or_assign(server, std::move(answer));
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  fetch::KeyRequest last_request() {
    absl::MutexLock lock(&mu_);
    return last_request_;
  }
  absl::StatusOr<core::ServerKeys> answer_ = absl::UnavailableError("unset");
  bool hold_ = false;
  absl::Notification release_;

 private:
  const std::string source_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  fetch::KeyRequest last_request_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::StatusOr<core::ServerKeys>> by_server_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_FAKES_FAKE_FETCHER_H_
