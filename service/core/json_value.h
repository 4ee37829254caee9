// JSON values as the Matrix signing rules see them (appendices: "Canonical
// JSON"). Every number keeps its exact lexeme, however long (Python's reference
// signer accepted integers of any size), so nothing is rounded before a
// room-version rule decides what the number means.
//
// Objects keep their members sorted by key in code-point (= UTF-8 byte) order,
// which is the canonical order, so encoding never sorts.
//
// Values are plain data and may be used from any thread as long as nobody
// mutates them at the same time.
#ifndef KEYVERIFIER_SERVICE_CORE_JSON_VALUE_H_
#define KEYVERIFIER_SERVICE_CORE_JSON_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::core {

// How a number was written in the input.
enum class NumberKind {
  kInteger,     // a plain integer that fits in int64 (`-0` reads as 0)
  kBigInteger,  // a plain integer outside int64; only the lexeme is kept
  kNonInteger,  // written with a fraction or an exponent; only the lexeme is kept
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

// Limits of the parsers (ParseJson, JsonView::Parse).
struct ParseOptions {
  size_t max_bytes = 8 << 20;
  int max_depth = 100;
};

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_JSON_VALUE_H_
