// Name("example.org"): a server name literal in a test. The literal must be
// valid; a typo aborts the test with the parse error rather than letting it
// run against some other name.
#ifndef KEYVERIFIER_TESTS_TESTING_SERVER_NAME_H_
#define KEYVERIFIER_TESTS_TESTING_SERVER_NAME_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "service/core/server_name.h"

namespace keyverifier::testing {

inline core::ServerName Name(absl::string_view literal) {
  absl::StatusOr<core::ServerName> name = core::ServerName::Parse(literal);
  if (!name.ok()) {
    std::fprintf(stderr, "testing::Name: %s\n", std::string(name.status().message()).c_str());
    std::abort();
  }
  return *std::move(name);
}

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_TESTING_SERVER_NAME_H_
