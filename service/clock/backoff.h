// Exponential backoff: how long to wait after the n-th consecutive failure.
#ifndef KEYVERIFIER_SERVICE_CLOCK_BACKOFF_H_
#define KEYVERIFIER_SERVICE_CLOCK_BACKOFF_H_

#include <algorithm>

#include "absl/time/time.h"

namespace keyverifier {

// `initial` after the first failure, doubling with each further one, never
// more than `max`. `failures` below 1 counts as 1.
inline absl::Duration Backoff(int failures, absl::Duration initial, absl::Duration max) {
  absl::Duration wait = initial;
  for (int i = 1; i < failures && wait < max; ++i) wait *= 2;
  return std::min(wait, max);
}

}  // namespace keyverifier

#endif  // KEYVERIFIER_SERVICE_CLOCK_BACKOFF_H_
