// The canonical encoder (appendices: "Canonical JSON"): members in key order
// (Values keep them so), no insignificant whitespace, strings escaped only
// where the appendix requires, and numbers as a NumberPolicy says.
//
// Pure. Errors: InvalidArgumentError naming the path of the value that cannot
// be encoded and why.
#ifndef KEYVERIFIER_SERVICE_CORE_CANONICAL_JSON_H_
#define KEYVERIFIER_SERVICE_CORE_CANONICAL_JSON_H_

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/json_value.h"

namespace keyverifier::core {

// What the canonical encoder does with numbers. The spec allows only integers in
// [-(2^53-1), 2^53-1]; older room versions carry events that break that rule and
// must still be verifiable the way their signers encoded them.
enum class NumberPolicy {
  // Room versions 6 and later: only integer lexemes in range; fractions and
  // exponents are rejected (the v6 rule enforces the appendix grammar).
  kStrict,
  // Generic signed JSON (key responses, requests, the CLI): as kStrict, but a
  // number whose value is an integer in range is written as that integer, as the
  // appendix examples do (`1e10` -> `10000000000`). Non-integers are rejected.
  kSpec,
  // Room versions 1-5: what the reference signer (Python `canonicaljson`) writes:
  // integers of any size exactly, non-integers as Python's shortest `repr` of the
  // nearest double (`1e10` -> `10000000000.0`, `1e-5` -> `1e-05`). A number too
  // large for a double is rejected.
  kLegacy,
};

// Appends the canonical encoding of `value` to `out`. On error `out` holds a
// partial encoding and must be discarded.
absl::Status AppendCanonicalJson(const Value& value, NumberPolicy policy,
                                 std::string* out);

// Where a member went in an encoding: `"key":value` is out[begin, end);
// begin == end for a member left out.
struct MemberSpan {
  size_t begin = 0;
  size_t end = 0;
};

// As above for an object, leaving out the top-level members named in `skip`
// (e.g. "signatures", "unsigned"), without copying the object. With `spans`,
// also tells where each member (by its index in the object) went.
absl::Status AppendCanonicalJsonWithout(
    const Value& object, std::initializer_list<absl::string_view> skip,
    NumberPolicy policy, std::string* out,
    std::vector<MemberSpan>* spans = nullptr);

absl::StatusOr<std::string> CanonicalJson(
    const Value& value, NumberPolicy policy = NumberPolicy::kSpec);

// Convenience for building JSON output (CLI lines, test fixtures): the canonical
// encoding, which for values built from strings, integers and booleans cannot fail.
std::string ToJson(const Value& value);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_CANONICAL_JSON_H_
