// A key source answering as scripted, counting calls; it can hold its
// answers until released, to test concurrency without threads or sleeping.
#ifndef KEYVERIFIER_TESTS_FAKES_FAKE_FETCHER_H_
#define KEYVERIFIER_TESTS_FAKES_FAKE_FETCHER_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "service/fetch/key_fetcher.h"

namespace keyverifier::testing {

// Answers as scripted, at once (on the caller's thread) or, with hold_, when
// Release() is called. FetchMany is the default: one Fetch per server,
// counted as such.
class ScriptedFetcher : public fetch::KeyFetcher {
 public:
  explicit ScriptedFetcher(std::string source) : source_(std::move(source)) {}
  const std::string& source() const override { return source_; }
  void Fetch(const fetch::KeyQuery& request, absl::Time,
             async::Callback<core::ServerKeys> done) override {
    absl::StatusOr<core::ServerKeys> answer;
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      last_request_ = request;
      auto it = by_server_.find(request.server_name.str());
      answer = it != by_server_.end() ? it->second : answer_;
      if (hold_) {
        held_.emplace_back(std::move(done), std::move(answer));
        return;
      }
    }
    done(std::move(answer));
  }
  // An answer for one server only (others get the default answer).
  void SetFor(const std::string& server, absl::StatusOr<core::ServerKeys> answer) {
    absl::MutexLock lock(&mu_);
    by_server_.insert_or_assign(server, std::move(answer));
  }
  // Answers every held fetch (on this thread) and stops holding.
  void Release() {
    std::vector<std::pair<async::Callback<core::ServerKeys>, absl::StatusOr<core::ServerKeys>>>
        held;
    {
      absl::MutexLock lock(&mu_);
      hold_ = false;
      held = std::move(held_);
    }
    for (auto& [done, answer] : held) done(std::move(answer));
  }
  int held() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // The last request (there must have been one).
  fetch::KeyQuery last_request() {
    absl::MutexLock lock(&mu_);
    return last_request_.value();
  }
  // Set by tests while no fetch is under way.
  absl::StatusOr<core::ServerKeys> answer_ = absl::UnavailableError("unset");
  bool hold_ = false;

 private:
  const std::string source_;
  absl::Mutex mu_;
  std::vector<std::pair<async::Callback<core::ServerKeys>, absl::StatusOr<core::ServerKeys>>>
      held_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<fetch::KeyQuery> last_request_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::StatusOr<core::ServerKeys>> by_server_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_FAKES_FAKE_FETCHER_H_
