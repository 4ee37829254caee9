// Test double at the keyring seam.
#ifndef KEYVERIFIER_TESTS_FAKES_FAKE_KEYRING_H_
#define KEYVERIFIER_TESTS_FAKES_FAKE_KEYRING_H_

#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/fakes/fake_clock.h"
#include "service/keyring/keyring.h"

namespace keyverifier::testing {

// Answers from a fixed table; unknown servers are NotFound. Counts calls.
class FakeKeyRing : public keyring::KeyRing {
 public:
  void Add(keyring::KeyResult result) {
    absl::MutexLock lock(&mu_);
    results_[result.server_name] = std::move(result);
  }

  void GetKeys(const keyring::KeyQuery& query, absl::Time,
               async::Callback<keyring::KeyResult> done) override {
    absl::StatusOr<keyring::KeyResult> r;
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      last_query_ = query;
      auto it = results_.find(query.server_name.str());
      if (it == results_.end()) {
        r = absl::NotFoundError(absl::StrCat("no keys known for ", query.server_name.str()));
      } else {
        r = it->second;
      }
    }
    done(std::move(r));
  }

  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // The last query asked (there must have been one).
  keyring::KeyQuery last_query() {
    absl::MutexLock lock(&mu_);
    return last_query_.value();
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, keyring::KeyResult> results_ ABSL_GUARDED_BY(mu_);
  std::optional<keyring::KeyQuery> last_query_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};


}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_FAKES_FAKE_KEYRING_H_
