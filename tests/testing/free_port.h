// Loopback ports for servers that tests start.
#ifndef KEYVERIFIER_TESTS_TESTING_FREE_PORT_H_
#define KEYVERIFIER_TESTS_TESTING_FREE_PORT_H_

#include "absl/status/statusor.h"

namespace keyverifier::testing {

// A port that was free for both TCP and UDP on 127.0.0.1 a moment ago.
absl::StatusOr<int> FreeLoopbackPort();

// Whether something accepts TCP connections on 127.0.0.1:port.
bool ListeningOnLoopback(int port);

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_TESTING_FREE_PORT_H_
