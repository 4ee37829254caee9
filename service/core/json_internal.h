// Helpers shared by the JSON libraries (json_value, json_view, json_parser);
// not for use elsewhere.
#ifndef KEYVERIFIER_SERVICE_CORE_JSON_INTERNAL_H_
#define KEYVERIFIER_SERVICE_CORE_JSON_INTERNAL_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"
#include "service/core/json_value.h"

namespace keyverifier::core::json_internal {

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of the longest prefix of `s` that is a JSON number, 0 if none; this
// is where a JSON reader's number token ends ("1.5.3" -> 3, "01" -> 1).
size_t JsonNumberLength(absl::string_view s);

// Classifies a JSON number lexeme (already known to match the JSON grammar).
void SetNumberFromLexeme(absl::string_view lexeme, NumberKind* kind,
                         int64_t* i, std::string* text);

// True if `s` contains the UTF-8 form of a UTF-16 surrogate (U+D800..U+DFFF),
// which RapidJSON lets through when it comes from a lone \uDCxx escape.
inline bool ContainsSurrogate(absl::string_view s) {
  const char* p = s.data();
  const char* end = p + s.size();
  while ((p = static_cast<const char*>(std::memchr(p, 0xED, end - p)))) {
    if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
    ++p;
  }
  return false;
}

}  // namespace keyverifier::core::json_internal

#endif  // KEYVERIFIER_SERVICE_CORE_JSON_INTERNAL_H_
