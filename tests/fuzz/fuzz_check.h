// Invariant checks for the fuzz targets. A failed check prints what was
// expected and what the input was, then aborts: libFuzzer keeps the input as
// a crash, the regression test fails naming it.
#ifndef KEYVERIFIER_TESTS_FUZZ_FUZZ_CHECK_H_
#define KEYVERIFIER_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace keyverifier::fuzz {

// Prints the failed condition, `detail` and the input being run, and aborts.
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const std::string& detail);

// The driver says which input is running, so a failed check can name it.
// `name` must outlive the call to the target.
void SetCurrentInput(const char* name, const uint8_t* data, size_t size);

// Text for messages: printable ASCII as is, everything else escaped, cut at
// a few hundred bytes.
std::string Escaped(absl::string_view bytes);

}  // namespace keyverifier::fuzz

#define FUZZ_CHECK(cond)                                                      \
  do {                                                                        \
    if (!(cond)) ::keyverifier::fuzz::CheckFailed(__FILE__, __LINE__, #cond, \
                                                  std::string());             \
  } while (0)

// `detail` is evaluated only when the check fails.
#define FUZZ_CHECK_MSG(cond, detail)                                          \
  do {                                                                        \
    if (!(cond)) ::keyverifier::fuzz::CheckFailed(__FILE__, __LINE__, #cond, \
                                                  (detail));                  \
  } while (0)

// Both sides printed (escaped) when they differ; a and b must convert to
// absl::string_view.
#define FUZZ_CHECK_EQ(a, b)                                                   \
  do {                                                                        \
    const auto& fuzz_a_ = (a);                                                \
    const auto& fuzz_b_ = (b);                                                \
    if (!(fuzz_a_ == fuzz_b_)) {                                              \
      ::keyverifier::fuzz::CheckFailed(                                       \
          __FILE__, __LINE__, #a " == " #b,                                   \
          "left:  " + ::keyverifier::fuzz::Escaped(fuzz_a_) +                 \
              "\nright: " + ::keyverifier::fuzz::Escaped(fuzz_b_));           \
    }                                                                         \
  } while (0)

#endif  // KEYVERIFIER_TESTS_FUZZ_FUZZ_CHECK_H_
