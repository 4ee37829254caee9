// The JSON parsers (ParseJson, JsonView) and the canonical encoder
// (service/core/json_parser.h, json_view.h, canonical_json.h).
//
// Invariants:
// - ParseJson is deterministic: a second parse gives an equal Value.
// - JsonView::Parse accepts only what ParseJson accepts, and reads it to the
//   same Value, through ToValue and through its accessors (type, scalars,
//   child, key, Find); its canonical encodings are the Value's, errors
//   included.
// - For each NumberPolicy, an encoding that succeeds is canonical: it parses,
//   encodes again to the same bytes, and (kStrict, kSpec) holds only integers
//   in the safe range.
// - The encoding without the top-level "signatures" and "unsigned" members
//   is the encoding of the object with them erased.
// - Tighter ParseOptions (depth, size) only ever refuse more.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/json_view.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::core {
namespace {

constexpr NumberPolicy kPolicies[] = {NumberPolicy::kStrict, NumberPolicy::kSpec,
                                      NumberPolicy::kLegacy};

std::string StatusText(const absl::Status& s) { return s.ToString(); }

// Every number in `v` is an integer in [-(2^53-1), 2^53-1].
bool OnlySafeIntegers(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNumber:
      return v.is_safe_integer();
    case Value::Type::kArray:
      for (const Value& item : v.array()) {
        if (!OnlySafeIntegers(item)) return false;
      }
      return true;
    case Value::Type::kObject:
      for (const Value::Member& m : v.members()) {
        if (!OnlySafeIntegers(m.second)) return false;
      }
      return true;
    default:
      return true;
  }
}

// The view's accessors read `r` as `v` reads: type, scalars, sizes, keys in
// order, and Find (which walks the object's members by key) finds each member.
void CheckViewReads(const JsonView& view, JsonView::Ref r, const Value& v) {
  FUZZ_CHECK(static_cast<bool>(r));
  FUZZ_CHECK(view.type(r) == v.type());
  switch (v.type()) {
    case Value::Type::kString:
      FUZZ_CHECK_EQ(std::string(view.string_value(r)), v.string_value());
      return;
    case Value::Type::kNumber:
      FUZZ_CHECK(view.is_integer(r) && v.number_kind() == NumberKind::kInteger);
      FUZZ_CHECK(view.int_value(r) == v.int_value());
      return;
    case Value::Type::kArray:
      FUZZ_CHECK(view.size(r) == v.array().size());
      for (size_t i = 0; i < v.array().size(); ++i) {
        CheckViewReads(view, view.child(r, i), v.array()[i]);
      }
      FUZZ_CHECK(!view.child(r, v.array().size()));
      FUZZ_CHECK(!view.Find(r, ""));
      return;
    case Value::Type::kObject: {
      FUZZ_CHECK(view.size(r) == v.members().size());
      for (size_t i = 0; i < v.members().size(); ++i) {
        const Value::Member& m = v.members()[i];
        FUZZ_CHECK_EQ(std::string(view.key(r, i)), m.first);
        FUZZ_CHECK(view.type(view.child(r, i)) == m.second.type());
        FUZZ_CHECK(v.Find(m.first) == &m.second);
        CheckViewReads(view, view.Find(r, m.first), m.second);
      }
      FUZZ_CHECK(!view.child(r, v.members().size()));
      // A key no member has (longer than every key) is absent from both.
      std::string missing = "missing";
      for (const Value::Member& m : v.members()) {
        if (m.first.size() >= missing.size()) missing.assign(m.first.size() + 1, 'x');
      }
      FUZZ_CHECK(!view.Find(r, missing) && v.Find(missing) == nullptr);
      return;
    }
    default:
      FUZZ_CHECK(view.size(r) == 0 && !view.Find(r, "") && !view.child(r, 0));
      return;
  }
}

void CheckEncodings(const Value& value, JsonView& view) {
  for (NumberPolicy policy : kPolicies) {
    std::string canonical;
    const absl::Status status = AppendCanonicalJson(value, policy, &canonical);

    std::string from_view;
    const absl::Status view_status = view.AppendCanonicalJson(view.root(), policy, &from_view);
    FUZZ_CHECK_EQ(StatusText(status), StatusText(view_status));
    if (!status.ok()) continue;
    FUZZ_CHECK_EQ(canonical, from_view);

    absl::StatusOr<Value> again = ParseJson(canonical);
    FUZZ_CHECK_MSG(again.ok(), "canonical output does not parse: " + again.status().ToString() +
                                   "\noutput: " + keyverifier::fuzz::Escaped(canonical));
    absl::StatusOr<std::string> twice = CanonicalJson(*again, policy);
    FUZZ_CHECK_MSG(twice.ok(), twice.status().ToString());
    FUZZ_CHECK_EQ(canonical, *twice);
    if (policy != NumberPolicy::kLegacy) FUZZ_CHECK(OnlySafeIntegers(*again));

    if (value.is_object()) {
      std::string without;
      FUZZ_CHECK(AppendCanonicalJsonWithout(value, {"signatures", "unsigned"}, policy, &without)
                     .ok());
      Value erased = value;
      erased.Erase("signatures");
      erased.Erase("unsigned");
      absl::StatusOr<std::string> erased_canonical = CanonicalJson(erased, policy);
      FUZZ_CHECK(erased_canonical.ok());
      FUZZ_CHECK_EQ(without, *erased_canonical);
      std::string view_without;
      FUZZ_CHECK(view.AppendCanonicalJsonWithout(view.root(), {"signatures", "unsigned"}, policy,
                                                 &view_without)
                     .ok());
      FUZZ_CHECK_EQ(without, view_without);
    }
  }
}

}  // namespace
}  // namespace keyverifier::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::core;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const absl::StatusOr<Value> parsed = ParseJson(text);
  const absl::StatusOr<Value> parsed_again = ParseJson(text);
  FUZZ_CHECK_EQ(parsed.status().ToString(), parsed_again.status().ToString());

  static JsonView* view = new JsonView();
  const bool view_ok = view->Parse(text);
  if (!parsed.ok()) {
    FUZZ_CHECK_MSG(!view_ok, "JsonView accepted what ParseJson refused: " +
                                 parsed.status().ToString());
    return 0;
  }
  FUZZ_CHECK(*parsed == *parsed_again);

  // A size limit of exactly the input's size accepts it; a smaller depth
  // limit refuses more, never less, and never reads differently.
  ParseOptions exact;
  exact.max_bytes = size;
  const absl::StatusOr<Value> exact_parsed = ParseJson(text, exact);
  FUZZ_CHECK_MSG(exact_parsed.ok() && *exact_parsed == *parsed,
                 exact_parsed.status().ToString());
  ParseOptions shallow;
  shallow.max_depth = 3;
  const absl::StatusOr<Value> shallow_parsed = ParseJson(text, shallow);
  if (shallow_parsed.ok()) FUZZ_CHECK(*shallow_parsed == *parsed);

  if (!view_ok) {
    // The view declines numbers that are not int64 integers (and errors);
    // the canonical checks still run on the Value, through a view of the
    // encoder's own output where one exists.
    for (NumberPolicy policy : {NumberPolicy::kStrict, NumberPolicy::kSpec,
                                NumberPolicy::kLegacy}) {
      absl::StatusOr<std::string> canonical = CanonicalJson(*parsed, policy);
      if (!canonical.ok()) continue;
      absl::StatusOr<Value> again = ParseJson(*canonical);
      FUZZ_CHECK_MSG(again.ok(), again.status().ToString());
      absl::StatusOr<std::string> twice = CanonicalJson(*again, policy);
      FUZZ_CHECK(twice.ok());
      FUZZ_CHECK_EQ(*canonical, *twice);
    }
    return 0;
  }
  FUZZ_CHECK(view->ToValue(view->root()) == *parsed);
  CheckViewReads(*view, view->root(), *parsed);
  CheckEncodings(*parsed, *view);
  return 0;
}
