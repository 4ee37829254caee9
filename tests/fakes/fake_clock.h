// A clock that tests set and advance; nothing ever sleeps.
#ifndef KEYVERIFIER_TESTS_FAKES_FAKE_CLOCK_H_
#define KEYVERIFIER_TESTS_FAKES_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/clock/clock.h"

namespace keyverifier::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_FAKES_FAKE_CLOCK_H_
