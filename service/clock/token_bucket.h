// TokenBucket: at most `burst` at once, refilled at `rate` per second. Pure:
// the caller passes the time. Not thread-safe (callers hold their own lock).
#ifndef KEYVERIFIER_SERVICE_CLOCK_TOKEN_BUCKET_H_
#define KEYVERIFIER_SERVICE_CLOCK_TOKEN_BUCKET_H_

#include <algorithm>

#include "absl/time/time.h"

namespace keyverifier {

class TokenBucket {
 public:
  TokenBucket(double rate_per_second, double burst)
      : rate_(rate_per_second), burst_(burst), tokens_(burst) {}

  // Takes one token if there is one.
  bool TryTake(absl::Time now) {
    if (last_ != absl::InfinitePast() && now > last_) {
      tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
    }
    last_ = std::max(last_, now);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  const double rate_;
  const double burst_;
  double tokens_;
  absl::Time last_ = absl::InfinitePast();
};

}  // namespace keyverifier

#endif  // KEYVERIFIER_SERVICE_CLOCK_TOKEN_BUCKET_H_
