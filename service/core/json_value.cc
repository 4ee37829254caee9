#include "service/core/json_value.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "service/core/json_internal.h"

namespace keyverifier::core {
namespace json_internal {
namespace {

bool IsPlainIntegerLexeme(absl::string_view s) {
  return s.find_first_of(".eE") == absl::string_view::npos;
}

}  // namespace

void SetNumberFromLexeme(absl::string_view lexeme, NumberKind* kind,
                         int64_t* i, std::string* text) {
  if (IsPlainIntegerLexeme(lexeme)) {
    int64_t v = 0;
    auto [ptr, ec] =
        std::from_chars(lexeme.data(), lexeme.data() + lexeme.size(), v);
    if (ec == std::errc() && ptr == lexeme.data() + lexeme.size()) {
      *kind = NumberKind::kInteger;
      *i = v;  // "-0" reads as 0
      text->clear();
      return;
    }
    *kind = NumberKind::kBigInteger;
  } else {
    *kind = NumberKind::kNonInteger;
  }
  *i = 0;
  text->assign(lexeme.data(), lexeme.size());
}

size_t JsonNumberLength(absl::string_view s) {
  size_t p = 0;
  if (p < s.size() && s[p] == '-') ++p;
  if (p >= s.size()) return 0;
  if (s[p] == '0') {
    ++p;
  } else if (s[p] >= '1' && s[p] <= '9') {
    while (p < s.size() && IsDigit(s[p])) ++p;
  } else {
    return 0;
  }
  if (p + 1 < s.size() && s[p] == '.' && IsDigit(s[p + 1])) {
    p += 2;
    while (p < s.size() && IsDigit(s[p])) ++p;
  }
  if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
    size_t q = p + 1;
    if (q < s.size() && (s[q] == '+' || s[q] == '-')) ++q;
    if (q < s.size() && IsDigit(s[q])) {
      while (q < s.size() && IsDigit(s[q])) ++q;
      p = q;
    }
  }
  return p;
}

}  // namespace json_internal

namespace {

bool LooksLikeJsonNumber(absl::string_view s) {
  return !s.empty() && json_internal::JsonNumberLength(s) == s.size();
}

}  // namespace

Value Value::Bool(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}

Value Value::Integer(int64_t i) {
  Value v;
  v.type_ = Type::kNumber;
  v.number_kind_ = NumberKind::kInteger;
  v.int_ = i;
  return v;
}

absl::StatusOr<Value> Value::NumberFromLexeme(absl::string_view lexeme) {
  if (!LooksLikeJsonNumber(lexeme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", lexeme, "' is not a JSON number"));
  }
  Value v;
  v.type_ = Type::kNumber;
  json_internal::SetNumberFromLexeme(lexeme, &v.number_kind_, &v.int_, &v.str_);
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.str_ = std::move(s);
  return v;
}

Value Value::Array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kArray;
  v.array_ = std::move(items);
  return v;
}

Value Value::Object() {
  Value v;
  v.type_ = Type::kObject;
  return v;
}

bool Value::is_safe_integer() const {
  return type_ == Type::kNumber && number_kind_ == NumberKind::kInteger &&
         int_ >= -kMaxSafeInteger && int_ <= kMaxSafeInteger;
}

namespace {
struct MemberKeyLess {
  bool operator()(const Value::Member& m, absl::string_view key) const {
    return absl::string_view(m.first) < key;
  }
};
}  // namespace

const Value* Value::Find(absl::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  auto it = std::lower_bound(members_.begin(), members_.end(), key,
                             MemberKeyLess());
  if (it == members_.end() || it->first != key) return nullptr;
  return &it->second;
}

Value* Value::FindMutable(absl::string_view key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->Find(key));
}

void Value::Set(std::string key, Value value) {
  auto it = std::lower_bound(members_.begin(), members_.end(),
                             absl::string_view(key), MemberKeyLess());
  if (it != members_.end() && it->first == key) {
    it->second = std::move(value);
  } else {
    members_.emplace(it, std::move(key), std::move(value));
  }
}

bool Value::Erase(absl::string_view key) {
  auto it = std::lower_bound(members_.begin(), members_.end(), key,
                             MemberKeyLess());
  if (it == members_.end() || it->first != key) return false;
  members_.erase(it);
  return true;
}

bool Value::operator==(const Value& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case Type::kNull:
      return true;
    case Type::kBool:
      return bool_ == o.bool_;
    case Type::kNumber:
      return number_kind_ == o.number_kind_ && int_ == o.int_ && str_ == o.str_;
    case Type::kString:
      return str_ == o.str_;
    case Type::kArray:
      return array_ == o.array_;
    case Type::kObject:
      return members_ == o.members_;
  }
  return false;
}

}  // namespace keyverifier::core
