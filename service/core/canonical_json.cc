#include "service/core/canonical_json.h"

#include <locale.h>
#include <stdlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "service/core/canonical_json_encoder.h"

namespace keyverifier::core {
namespace json_internal {

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
    // Saturate the exponent. The mantissa has fewer digits than the lexeme
    // has characters, so past this cap the value is out of range (or, if the
    // exponent is negative, has a fraction) however many fraction digits
    // there are. A fixed cap would not do: "0.<99999 zeros>1e100005" is 1e5.
    const long long cap = static_cast<long long>(lexeme.size()) + 20;
    for (char c : exp) {
      exponent = std::min(cap, exponent * 10 + (c - '0'));
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

bool PythonFloatRepr(absl::string_view lexeme, std::string* out) {
  // strtod_l with the C locale: the decimal point must not depend on the
  // process locale. (from_chars would do, but treats underflow as an error
  // where Python, like strtod, rounds to zero.)
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t{});
  std::string copy(lexeme);
  double d = strtod_l(copy.c_str(), nullptr, c_locale);
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

}  // namespace json_internal

namespace {

using json_internal::Encoder;
using json_internal::NotAnObject;

// How the encoder reads Values.
struct ValueTree {
  using Node = const Value*;
  bool plain_strings() const { return false; }
  Value::Type type(Node n) const { return n->type(); }
  bool bool_value(Node n) const { return n->bool_value(); }
  NumberKind number_kind(Node n) const { return n->number_kind(); }
  int64_t int_value(Node n) const { return n->int_value(); }
  absl::string_view text(Node n) const { return n->string_value(); }
  size_t size(Node n) const {
    return n->is_array() ? n->array().size() : n->members().size();
  }
  Node item(Node n, size_t i) const { return &n->array()[i]; }
  absl::string_view key(Node n, size_t i) const { return n->members()[i].first; }
  Node member(Node n, size_t i) const { return &n->members()[i].second; }
};

}  // namespace

absl::Status AppendCanonicalJson(const Value& value, NumberPolicy policy,
                                 std::string* out) {
  return Encoder<ValueTree>({}, policy, out).Encode(&value);
}

absl::Status AppendCanonicalJsonWithout(
    const Value& object, std::initializer_list<absl::string_view> skip,
    NumberPolicy policy, std::string* out, std::vector<MemberSpan>* spans) {
  if (!object.is_object()) return NotAnObject();
  return Encoder<ValueTree>({}, policy, out).EncodeMembers(&object, skip, spans);
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
