// The strict JSON parser: simdjson for the common case (through a JsonView),
// RapidJSON's SAX reader where exact number lexemes or error positions are
// needed. It accepts RFC 8259 JSON only: valid UTF-8 (no lone surrogates, also
// not via \u escapes), no duplicate keys in an object, bounded input size and
// nesting depth.
//
// Pure: no I/O, no clock, no globals (a reused scratch space per thread).
//
// Errors: InvalidArgumentError naming the byte offset and what was wrong.
#ifndef KEYVERIFIER_SERVICE_CORE_JSON_PARSER_H_
#define KEYVERIFIER_SERVICE_CORE_JSON_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/json_value.h"

namespace keyverifier::core {

// Parses one JSON document (surrounding whitespace allowed).
absl::StatusOr<Value> ParseJson(absl::string_view text,
                                const ParseOptions& options = {});

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_JSON_PARSER_H_
