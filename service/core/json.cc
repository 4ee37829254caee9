#include "service/core/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"

namespace keyverifier::core {
namespace {

bool IsPlainIntegerLexeme(absl::string_view s) {
  return s.find_first_of(".eE") == absl::string_view::npos;
}

// Classifies a JSON number lexeme (already known to match the JSON grammar).
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

bool LooksLikeJsonNumber(absl::string_view s) {
  size_t p = 0;
  if (p < s.size() && s[p] == '-') ++p;
  if (p >= s.size()) return false;
  if (s[p] == '0') {
    ++p;
  } else if (s[p] >= '1' && s[p] <= '9') {
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
  } else {
    return false;
  }
  if (p < s.size() && s[p] == '.') {
    ++p;
    size_t start = p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == start) return false;
  }
  if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
    ++p;
    if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
    size_t start = p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == start) return false;
  }
  return p == s.size();
}

// True if `s` contains the UTF-8 form of a UTF-16 surrogate (U+D800..U+DFFF),
// which RapidJSON lets through when it comes from a lone \uDCxx escape.
bool ContainsSurrogate(const std::string& s) {
  const char* p = s.data();
  const char* end = p + s.size();
  while ((p = static_cast<const char*>(std::memchr(p, 0xED, end - p)))) {
    if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
    ++p;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- Value

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
  SetNumberFromLexeme(lexeme, &v.number_kind_, &v.int_, &v.str_);
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

// ---------------------------------------------------------------- Parser

// SAX handler building Values on an explicit stack (RapidJSON runs in iterative
// mode, so deep input cannot exhaust the C++ stack either).
class JsonBuilder {
 public:
  explicit JsonBuilder(int max_depth) : max_depth_(max_depth) {}

  bool Null() { return Add(Value()); }
  bool Bool(bool b) { return Add(Value::Bool(b)); }
  bool Int(int) { return false; }  // never called with kParseNumbersAsStrings
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* str, rapidjson::SizeType len, bool) {
    Value v;
    v.type_ = Value::Type::kNumber;
    SetNumberFromLexeme(absl::string_view(str, len), &v.number_kind_, &v.int_,
                        &v.str_);
    return Add(std::move(v));
  }
  bool String(const char* str, rapidjson::SizeType len, bool) {
    Value v;
    v.type_ = Value::Type::kString;
    v.str_.assign(str, len);
    if (ContainsSurrogate(v.str_)) {
      error_ = "string contains a lone UTF-16 surrogate escape";
      return false;
    }
    return Add(std::move(v));
  }
  bool StartObject() { return Push(Value::Object()); }
  bool Key(const char* str, rapidjson::SizeType len, bool) {
    Frame& f = stack_.back();
    f.key.assign(str, len);
    if (ContainsSurrogate(f.key)) {
      error_ = "object key contains a lone UTF-16 surrogate escape";
      return false;
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    Value v = std::move(stack_.back().value);
    stack_.pop_back();
    auto& m = v.members_;
    std::sort(m.begin(), m.end(), [](const Value::Member& a,
                                     const Value::Member& b) {
      return a.first < b.first;
    });
    for (size_t i = 1; i < m.size(); ++i) {
      if (m[i - 1].first == m[i].first) {
        error_ = absl::StrCat("duplicate key \"", m[i].first, "\" in object");
        return false;
      }
    }
    return Add(std::move(v));
  }
  bool StartArray() { return Push(Value::Array()); }
  bool EndArray(rapidjson::SizeType) {
    Value v = std::move(stack_.back().value);
    stack_.pop_back();
    return Add(std::move(v));
  }

  Value TakeRoot() { return std::move(root_); }
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    Value value;
    std::string key;
  };

  bool Push(Value v) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      error_ = absl::StrCat("nesting deeper than ", max_depth_, " levels");
      return false;
    }
    stack_.push_back(Frame{std::move(v), {}});
    return true;
  }

  bool Add(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return true;
    }
    Frame& f = stack_.back();
    if (f.value.type_ == Value::Type::kArray) {
      f.value.array_.push_back(std::move(v));
    } else {
      f.value.members_.emplace_back(std::move(f.key), std::move(v));
    }
    return true;
  }

  int max_depth_;
  std::vector<Frame> stack_;
  Value root_;
  std::string error_;
};

absl::StatusOr<Value> ParseJson(absl::string_view text,
                                const ParseOptions& options) {
  if (text.size() > options.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON is ", text.size(), " bytes; the limit is ",
                     options.max_bytes));
  }
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  JsonBuilder builder(options.max_depth);
  rapidjson::MemoryStream stream(text.data(), text.size());
  rapidjson::Reader reader;
  rapidjson::ParseResult result =
      reader.Parse<kFlags>(stream, builder);
  if (result.IsError()) {
    std::string what = builder.error().empty()
                           ? rapidjson::GetParseError_En(result.Code())
                           : builder.error();
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid JSON at byte ", result.Offset(), ": ", what));
  }
  return builder.TakeRoot();
}

// ---------------------------------------------------------------- Encoder

namespace {

void AppendEscapedString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

// For NumberPolicy::kSpec: the exact integer a lexeme with a fraction and/or
// exponent denotes, if it is an integer in the safe range.
bool ExactSafeInteger(absl::string_view lexeme, int64_t* out) {
  bool negative = !lexeme.empty() && lexeme[0] == '-';
  if (negative) lexeme.remove_prefix(1);
  size_t e = lexeme.find_first_of("eE");
  absl::string_view mantissa = lexeme.substr(0, e);
  long long exponent = 0;
  if (e != absl::string_view::npos) {
    absl::string_view exp = lexeme.substr(e + 1);
    bool exp_negative = false;
    if (!exp.empty() && (exp[0] == '+' || exp[0] == '-')) {
      exp_negative = exp[0] == '-';
      exp.remove_prefix(1);
    }
    // Cap: beyond this the value is certainly out of range or zero.
    for (char c : exp) {
      exponent = exponent * 10 + (c - '0');
      if (exponent > 100000) exponent = 100000;
    }
    if (exp_negative) exponent = -exponent;
  }
  std::string digits;
  size_t dot = mantissa.find('.');
  if (dot == absl::string_view::npos) {
    digits.assign(mantissa.data(), mantissa.size());
  } else {
    digits.assign(mantissa.data(), dot);
    digits.append(mantissa.data() + dot + 1, mantissa.size() - dot - 1);
    exponent -= static_cast<long long>(mantissa.size() - dot - 1);
  }
  // value = digits * 10^exponent
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) {
    *out = 0;
    return true;
  }
  digits.erase(0, first);
  while (exponent < 0) {
    if (digits.empty() || digits.back() != '0') return false;  // a fraction
    digits.pop_back();
    ++exponent;
  }
  if (static_cast<long long>(digits.size()) + exponent > 16) return false;
  digits.append(static_cast<size_t>(exponent), '0');
  int64_t v = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (v > kMaxSafeInteger) return false;
  *out = negative ? -v : v;
  return true;
}

// Python's repr() of the double nearest to `lexeme`: shortest round-trip digits,
// fixed notation for decimal exponents in [-4, 16), scientific otherwise.
bool PythonFloatRepr(absl::string_view lexeme, std::string* out) {
  std::string copy(lexeme);
  double d = std::strtod(copy.c_str(), nullptr);
  if (!std::isfinite(d)) return false;
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d,
                           std::chars_format::scientific);
  absl::string_view sci(buf, res.ptr - buf);  // e.g. "-1.2345e+02"
  bool negative = sci[0] == '-';
  if (negative) sci.remove_prefix(1);
  size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits.push_back(c);
  }
  int exp10 = std::atoi(std::string(sci.substr(epos + 1)).c_str());
  if (negative) out->push_back('-');
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 < 0) {
      out->append("0.");
      out->append(static_cast<size_t>(-exp10 - 1), '0');
      out->append(digits);
    } else if (static_cast<int>(digits.size()) <= exp10 + 1) {
      out->append(digits);
      out->append(static_cast<size_t>(exp10 + 1 - digits.size()), '0');
      out->append(".0");
    } else {
      out->append(digits, 0, exp10 + 1);
      out->push_back('.');
      out->append(digits, exp10 + 1, std::string::npos);
    }
  } else {
    out->push_back(digits[0]);
    if (digits.size() > 1) {
      out->push_back('.');
      out->append(digits, 1, std::string::npos);
    }
    out->push_back('e');
    out->push_back(exp10 < 0 ? '-' : '+');
    int a = exp10 < 0 ? -exp10 : exp10;
    if (a < 10) out->push_back('0');
    absl::StrAppend(out, a);
  }
  return true;
}

class Encoder {
 public:
  Encoder(NumberPolicy policy, std::string* out) : policy_(policy), out_(out) {}

  absl::Status Encode(const Value& v) {
    switch (v.type()) {
      case Value::Type::kNull:
        out_->append("null");
        return absl::OkStatus();
      case Value::Type::kBool:
        out_->append(v.bool_value() ? "true" : "false");
        return absl::OkStatus();
      case Value::Type::kNumber:
        return EncodeNumber(v);
      case Value::Type::kString:
        AppendEscapedString(v.string_value(), out_);
        return absl::OkStatus();
      case Value::Type::kArray: {
        out_->push_back('[');
        const auto& items = v.array();
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out_->push_back(',');
          absl::Status s = Encode(items[i]);
          if (!s.ok()) return Prefix(s, absl::StrCat("[", i, "]"));
        }
        out_->push_back(']');
        return absl::OkStatus();
      }
      case Value::Type::kObject:
        return EncodeMembers(v, {});
    }
    return absl::InternalError("unknown JSON value type");
  }

  absl::Status EncodeMembers(const Value& v,
                             std::initializer_list<absl::string_view> skip) {
    out_->push_back('{');
    bool first = true;
    for (const auto& [key, value] : v.members()) {
      if (skip.size() &&
          std::find(skip.begin(), skip.end(), absl::string_view(key)) !=
              skip.end()) {
        continue;
      }
      if (!first) out_->push_back(',');
      first = false;
      AppendEscapedString(key, out_);
      out_->push_back(':');
      absl::Status s = Encode(value);
      if (!s.ok()) return Prefix(s, absl::StrCat(".", key));
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

 private:
  static absl::Status Prefix(const absl::Status& s, absl::string_view step) {
    // Messages read "number at $<path>: ..."; each enclosing step is inserted
    // right after the "$" while unwinding, so the path ends up outermost first.
    absl::string_view msg = s.message();
    constexpr absl::string_view kAt = "at $";
    size_t at = msg.find(kAt);
    if (at == absl::string_view::npos) return s;
    return absl::Status(
        s.code(), absl::StrCat(msg.substr(0, at + kAt.size()), step,
                               msg.substr(at + kAt.size())));
  }

  absl::Status OutOfRange(const Value& v, absl::string_view why) {
    std::string lexeme = v.number_kind() == NumberKind::kInteger
                             ? absl::StrCat(v.int_value())
                             : v.string_value();
    return absl::InvalidArgumentError(
        absl::StrCat("number at $: ", lexeme, " ", why));
  }

  absl::Status EncodeNumber(const Value& v) {
    switch (v.number_kind()) {
      case NumberKind::kInteger:
        if (policy_ != NumberPolicy::kLegacy && !v.is_safe_integer()) {
          return OutOfRange(v, "is outside [-(2^53-1), 2^53-1]");
        }
        absl::StrAppend(out_, v.int_value());
        return absl::OkStatus();
      case NumberKind::kBigInteger:
        if (policy_ != NumberPolicy::kLegacy) {
          return OutOfRange(v, "is outside [-(2^53-1), 2^53-1]");
        }
        out_->append(v.string_value());
        return absl::OkStatus();
      case NumberKind::kNonInteger:
        switch (policy_) {
          case NumberPolicy::kStrict:
            return OutOfRange(
                v, "has a fraction or exponent, which canonical JSON forbids");
          case NumberPolicy::kSpec: {
            int64_t i;
            if (!ExactSafeInteger(v.string_value(), &i)) {
              return OutOfRange(v, "is not an integer in [-(2^53-1), 2^53-1]");
            }
            absl::StrAppend(out_, i);
            return absl::OkStatus();
          }
          case NumberPolicy::kLegacy:
            if (!PythonFloatRepr(v.string_value(), out_)) {
              return OutOfRange(v, "does not fit in a double");
            }
            return absl::OkStatus();
        }
    }
    return absl::InternalError("unknown number kind");
  }

  NumberPolicy policy_;
  std::string* out_;
};

}  // namespace

absl::Status AppendCanonicalJson(const Value& value, NumberPolicy policy,
                                 std::string* out) {
  return Encoder(policy, out).Encode(value);
}

absl::Status AppendCanonicalJsonWithout(
    const Value& object, std::initializer_list<absl::string_view> skip,
    NumberPolicy policy, std::string* out) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError("expected a JSON object");
  }
  return Encoder(policy, out).EncodeMembers(object, skip);
}

absl::StatusOr<std::string> CanonicalJson(const Value& value,
                                          NumberPolicy policy) {
  std::string out;
  absl::Status s = AppendCanonicalJson(value, policy, &out);
  if (!s.ok()) return s;
  return out;
}

std::string ToJson(const Value& value) {
  std::string out;
  // Values built by this program hold only safe integers; kLegacy never fails
  // on them and writes any other number exactly as parsed.
  AppendCanonicalJson(value, NumberPolicy::kLegacy, &out).IgnoreError();
  return out;
}

}  // namespace keyverifier::core
