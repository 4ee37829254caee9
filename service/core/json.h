// JSON values as the Matrix signing rules see them, a strict parser, and the
// canonical encoder (appendices: "Canonical JSON").
//
// The parser (simdjson for the common case, RapidJSON's SAX reader where exact
// number lexemes or error positions are needed) accepts RFC 8259 JSON only:
// valid UTF-8 (no lone surrogates, also not via \u escapes), no duplicate keys
// in an object, bounded input size and nesting depth. Every number keeps its
// exact lexeme, however long (Python's reference signer accepted integers of
// any size), so nothing is rounded before a room-version rule decides what the
// number means.
//
// Objects keep their members sorted by key in code-point (= UTF-8 byte) order,
// which is the canonical order, so encoding never sorts.
//
// Pure: no I/O, no clock, no globals. Values are plain data and may be used from
// any thread as long as nobody mutates them at the same time.
//
// Errors: InvalidArgumentError naming the byte offset (parse) or the path
// (encode) and what was wrong.
#ifndef KEYVERIFIER_SERVICE_CORE_JSON_H_
#define KEYVERIFIER_SERVICE_CORE_JSON_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::core {

// How a number was written in the input.
enum class NumberKind {
  kInteger,     // a plain integer that fits in int64 (`-0` reads as 0)
  kBigInteger,  // a plain integer outside int64; only the lexeme is kept
  kNonInteger,  // written with a fraction or an exponent; only the lexeme is kept
};

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

inline constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, Value>;

  Value() = default;  // null
  static Value Bool(bool b);
  static Value Integer(int64_t i);
  // A number from its JSON lexeme; fails if `lexeme` is not a JSON number.
  static absl::StatusOr<Value> NumberFromLexeme(absl::string_view lexeme);
  static Value String(std::string s);
  static Value Array(std::vector<Value> items = {});
  static Value Object();

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }
  // True for an integer in [-(2^53-1), 2^53-1] written as a plain integer.
  bool is_safe_integer() const;

  bool bool_value() const { return bool_; }
  NumberKind number_kind() const { return number_kind_; }
  int64_t int_value() const { return int_; }  // valid for NumberKind::kInteger
  // The string value; for numbers other than kInteger, the lexeme.
  const std::string& string_value() const { return str_; }
  const std::vector<Value>& array() const { return array_; }
  std::vector<Value>& mutable_array() { return array_; }
  // Sorted by key, keys unique.
  const std::vector<Member>& members() const { return members_; }

  // Object access. Find returns nullptr when absent or when this is no object.
  const Value* Find(absl::string_view key) const;
  Value* FindMutable(absl::string_view key);
  // Inserts or replaces, keeping the order. Requires is_object().
  void Set(std::string key, Value value);
  // Returns whether the key was present.
  bool Erase(absl::string_view key);
  // Keeps only the members for which keep(key) is true.
  template <typename Pred>
  void RetainMembers(Pred keep) {
    size_t out = 0;
    for (size_t i = 0; i < members_.size(); ++i) {
      if (keep(absl::string_view(members_[i].first))) {
        if (out != i) members_[out] = std::move(members_[i]);
        ++out;
      }
    }
    members_.resize(out);
  }

  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

 private:
  friend class JsonBuilder;
  friend class JsonView;

  Type type_ = Type::kNull;
  bool bool_ = false;
  NumberKind number_kind_ = NumberKind::kInteger;
  int64_t int_ = 0;
  std::string str_;
  std::vector<Value> array_;
  std::vector<Member> members_;
};

struct ParseOptions {
  size_t max_bytes = 8 << 20;
  int max_depth = 100;
};

// Parses one JSON document (surrounding whitespace allowed).
absl::StatusOr<Value> ParseJson(absl::string_view text,
                                const ParseOptions& options = {});

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

// A parsed document read in place, without building Values: for hot paths
// that only look at a few members and need canonical encodings of parts of a
// document (event verification). One JsonView is reused for document after
// document; its memory is kept, so parsing allocates nothing once it has seen
// a document of the size.
//
// Parse accepts exactly what ParseJson accepts and reads the same way, except
// that it gives up (returns false, with no reason) on what is rare and needs
// care: numbers that are not int64 integers, and every kind of invalid input.
// Callers then use ParseJson, which decides, with a precise error where there
// is one. Members of every object are in canonical order.
//
// Refs are valid until the next Parse. Not thread-safe; one per thread.
class JsonView {
 public:
  // A value in the document; a default Ref (false) stands for "absent".
  class Ref {
   public:
    Ref() = default;
    explicit operator bool() const { return index_ != kNone; }

   private:
    friend class JsonView;
    static constexpr uint32_t kNone = ~uint32_t{0};
    explicit Ref(uint32_t index) : index_(index) {}
    uint32_t index_ = kNone;
  };

  JsonView();
  ~JsonView();
  JsonView(const JsonView&) = delete;
  JsonView& operator=(const JsonView&) = delete;

  bool Parse(absl::string_view text, const ParseOptions& options = {});

  Ref root() const;
  // The type of a present value (kNull for an absent one).
  Value::Type type(Ref r) const;
  bool is_string(Ref r) const { return type(r) == Value::Type::kString; }
  bool is_object(Ref r) const { return type(r) == Value::Type::kObject; }
  // Every number in a view is an int64 integer.
  bool is_integer(Ref r) const { return type(r) == Value::Type::kNumber; }
  absl::string_view string_value(Ref r) const;
  int64_t int_value(Ref r) const;
  // The member `key` of an object; absent if missing or `object` is no object.
  Ref Find(Ref object, absl::string_view key) const;
  // Members of an object / items of an array, in order.
  size_t size(Ref container) const;
  Ref child(Ref container, size_t i) const;
  absl::string_view key(Ref container, size_t i) const;

  // As the functions of the same names for the Value this document parses to.
  absl::Status AppendCanonicalJson(Ref r, NumberPolicy policy,
                                   std::string* out) const;
  absl::Status AppendCanonicalJsonWithout(
      Ref object, std::initializer_list<absl::string_view> skip,
      NumberPolicy policy, std::string* out,
      std::vector<MemberSpan>* spans = nullptr) const;
  // The Value ParseJson would give for this part of the document.
  Value ToValue(Ref r) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_JSON_H_
