// Clock: the one way the service reads the time, so that tests can control it.
//
// SystemClock reads the real time; tests use a fake that they advance. The
// core never reads a clock: it is handed `now` by callers that hold a Clock.
// Implementations are thread-safe.
#ifndef KEYVERIFIER_SERVICE_CLOCK_CLOCK_H_
#define KEYVERIFIER_SERVICE_CLOCK_CLOCK_H_

#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace keyverifier {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Matrix timestamps are milliseconds since the Unix epoch.
  int64_t NowMs() const { return absl::ToUnixMillis(Now()); }
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace keyverifier

#endif  // KEYVERIFIER_SERVICE_CLOCK_CLOCK_H_
