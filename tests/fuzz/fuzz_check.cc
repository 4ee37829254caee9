#include "tests/fuzz/fuzz_check.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_format.h"

namespace keyverifier::fuzz {
namespace {

const char* current_name = nullptr;
const uint8_t* current_data = nullptr;
size_t current_size = 0;

}  // namespace

std::string Escaped(absl::string_view bytes) {
  constexpr size_t kMax = 400;
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += absl::StrFormat("\\x%02x", c);
    }
  }
  if (bytes.size() > kMax) absl::StrAppendFormat(&out, "... (%d bytes)", bytes.size());
  return out;
}

void SetCurrentInput(const char* name, const uint8_t* data, size_t size) {
  current_name = name;
  current_data = data;
  current_size = size;
}

void CheckFailed(const char* file, int line, const char* condition,
                 const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, condition);
  if (!detail.empty()) std::fprintf(stderr, "%s\n", detail.c_str());
  if (current_data != nullptr) {
    std::fprintf(stderr, "input %s (%zu bytes): %s\n",
                 current_name != nullptr ? current_name : "?", current_size,
                 Escaped(absl::string_view(reinterpret_cast<const char*>(current_data),
                                           current_size))
                     .c_str());
  }
  std::fflush(stderr);
  std::abort();
}

}  // namespace keyverifier::fuzz
