// The canonical encoder over any tree of JSON values (Values, a JsonView's
// nodes); internal to canonical_json and json_view, which instantiate it.
#ifndef KEYVERIFIER_SERVICE_CORE_CANONICAL_JSON_ENCODER_H_
#define KEYVERIFIER_SERVICE_CORE_CANONICAL_JSON_ENCODER_H_

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/core/canonical_json.h"
#include "service/core/json_value.h"

namespace keyverifier::core::json_internal {

// Length of the prefix of `s` (from `i`) that needs no escaping: no byte
// < 0x20, '"' or '\\'. Most strings need no escaping at all, so this scans
// 16 bytes at a time where SSE2 is available (all x86-64), else 8 (SWAR).
inline size_t CleanRun(const char* s, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i max_control = _mm_set1_epi8(0x1F);
  const __m128i zero = _mm_setzero_si128();
  while (i + 16 <= n) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    // x <= 0x1F (unsigned) exactly when saturating x - 0x1F is zero.
    __m128i bad = _mm_or_si128(
        _mm_cmpeq_epi8(_mm_subs_epu8(x, max_control), zero),
        _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
    int mask = _mm_movemask_epi8(bad);
    if (mask != 0) return i + __builtin_ctz(static_cast<unsigned>(mask));
    i += 16;
  }
#endif
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  while (i + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, s + i, 8);
    // The high bit of a lane is set only where the lane matched (no false
    // negatives; a false positive just falls through to the byte loop).
    auto has_zero = [](uint64_t x) { return (x - kOnes) & ~x & kHigh; };
    uint64_t hit = ((w - 0x20 * kOnes) & ~w & kHigh) | has_zero(w ^ ('"' * kOnes)) |
                   has_zero(w ^ ('\\' * kOnes));
    if (hit != 0) break;
    i += 8;
  }
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
    ++i;
  }
  return n;
}

// Appends to a std::string through a raw cursor: the string is grown in large
// steps and trimmed once at the end, so writing a byte is a store, not a call
// into the library's push_back.
class Sink {
 public:
  explicit Sink(std::string* out) : out_(out), len_(out->size()) {}
  ~Sink() { out_->resize(len_); }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  void Put(char c) {
    Reserve(1);
    (*out_)[len_++] = c;
  }
  void Put(const char* p, size_t n) {
    Reserve(n);
    std::memcpy(&(*out_)[len_], p, n);
    len_ += n;
  }
  void Put(absl::string_view sv) { Put(sv.data(), sv.size()); }
  // Bytes written so far, counted from the start of the string.
  size_t size() const { return len_; }

 private:
  void Reserve(size_t n) {
    if (len_ + n > out_->size()) {
      // Use capacity the caller reserved before allocating more.
      size_t target = std::max({len_ + n, out_->capacity(), 2 * out_->size(),
                                size_t{256}});
      out_->resize(target);
    }
  }

  std::string* out_;
  size_t len_;
};

inline void AppendEscapedString(absl::string_view s, Sink& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.Put('"');
  size_t i = 0;
  while (true) {
    size_t clean_end = CleanRun(s.data(), i, s.size());
    out.Put(s.data() + i, clean_end - i);
    if (clean_end == s.size()) break;
    unsigned char c = static_cast<unsigned char>(s[clean_end]);
    switch (c) {
      case '"': out.Put("\\\"", 2); break;
      case '\\': out.Put("\\\\", 2); break;
      case '\b': out.Put("\\b", 2); break;
      case '\f': out.Put("\\f", 2); break;
      case '\n': out.Put("\\n", 2); break;
      case '\r': out.Put("\\r", 2); break;
      case '\t': out.Put("\\t", 2); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.Put(esc, 6);
      }
    }
    i = clean_end + 1;
  }
  out.Put('"');
}

// For NumberPolicy::kSpec: the exact integer a lexeme with a fraction and/or
// exponent denotes, if it is an integer in the safe range.
bool ExactSafeInteger(absl::string_view lexeme, int64_t* out);

// Python's repr() of the double nearest to `lexeme`: shortest round-trip digits,
// fixed notation for decimal exponents in [-4, 16), scientific otherwise.
bool PythonFloatRepr(absl::string_view lexeme, std::string* out);

// A Tree tells the encoder how to read its nodes: type, bool_value,
// number_kind, int_value, text (strings; lexemes of numbers not kInteger),
// size, item and key/member (the i-th child), and plain_strings (no string
// needs an escape).
template <typename Tree>
class Encoder {
 public:
  using Node = typename Tree::Node;
  Encoder(Tree tree, NumberPolicy policy, std::string* out)
      : tree_(tree), policy_(policy), out_(out) {}

  absl::Status Encode(Node v) {
    switch (tree_.type(v)) {
      case Value::Type::kNull:
        out_.Put("null", 4);
        return absl::OkStatus();
      case Value::Type::kBool:
        tree_.bool_value(v) ? out_.Put("true", 4) : out_.Put("false", 5);
        return absl::OkStatus();
      case Value::Type::kNumber:
        return EncodeNumber(v);
      case Value::Type::kString:
        PutString(tree_.text(v));
        return absl::OkStatus();
      case Value::Type::kArray: {
        out_.Put('[');
        const size_t n = tree_.size(v);
        for (size_t i = 0; i < n; ++i) {
          if (i) out_.Put(',');
          absl::Status s = Encode(tree_.item(v, i));
          if (!s.ok()) return Prefix(s, absl::StrCat("[", i, "]"));
        }
        out_.Put(']');
        return absl::OkStatus();
      }
      case Value::Type::kObject:
        return EncodeMembers(v, {});
    }
    return absl::InternalError("unknown JSON value type");
  }

  absl::Status EncodeMembers(Node v,
                             std::initializer_list<absl::string_view> skip,
                             std::vector<MemberSpan>* spans = nullptr) {
    out_.Put('{');
    bool first = true;
    const size_t n = tree_.size(v);
    if (spans != nullptr) spans->assign(n, MemberSpan());
    for (size_t i = 0; i < n; ++i) {
      const absl::string_view key = tree_.key(v, i);
      if (skip.size() && std::find(skip.begin(), skip.end(), key) != skip.end()) {
        continue;
      }
      if (!first) out_.Put(',');
      first = false;
      const size_t begin = out_.size();
      PutString(key);
      out_.Put(':');
      absl::Status s = Encode(tree_.member(v, i));
      if (!s.ok()) return Prefix(s, absl::StrCat(".", key));
      if (spans != nullptr) (*spans)[i] = {begin, out_.size()};
    }
    out_.Put('}');
    return absl::OkStatus();
  }

 private:
  void PutString(absl::string_view s) {
    if (tree_.plain_strings()) {
      out_.Put('"');
      out_.Put(s);
      out_.Put('"');
    } else {
      AppendEscapedString(s, out_);
    }
  }

  void PutInt(int64_t i) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), i);
    out_.Put(buf, res.ptr - buf);
  }

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

  absl::Status OutOfRange(Node v, absl::string_view why) {
    std::string lexeme = tree_.number_kind(v) == NumberKind::kInteger
                             ? absl::StrCat(tree_.int_value(v))
                             : std::string(tree_.text(v));
    return absl::InvalidArgumentError(
        absl::StrCat("number at $: ", lexeme, " ", why));
  }

  absl::Status EncodeNumber(Node v) {
    switch (tree_.number_kind(v)) {
      case NumberKind::kInteger: {
        const int64_t i = tree_.int_value(v);
        if (policy_ != NumberPolicy::kLegacy &&
            (i < -kMaxSafeInteger || i > kMaxSafeInteger)) {
          return OutOfRange(v, "is outside [-(2^53-1), 2^53-1]");
        }
        PutInt(i);
        return absl::OkStatus();
      }
      case NumberKind::kBigInteger:
        if (policy_ != NumberPolicy::kLegacy) {
          return OutOfRange(v, "is outside [-(2^53-1), 2^53-1]");
        }
        out_.Put(tree_.text(v));
        return absl::OkStatus();
      case NumberKind::kNonInteger:
        switch (policy_) {
          case NumberPolicy::kStrict:
            return OutOfRange(
                v, "has a fraction or exponent, which canonical JSON forbids");
          case NumberPolicy::kSpec: {
            int64_t i;
            if (!ExactSafeInteger(tree_.text(v), &i)) {
              return OutOfRange(v, "is not an integer in [-(2^53-1), 2^53-1]");
            }
            PutInt(i);
            return absl::OkStatus();
          }
          case NumberPolicy::kLegacy:
            std::string repr;
            if (!PythonFloatRepr(tree_.text(v), &repr)) {
              return OutOfRange(v, "does not fit in a double");
            }
            out_.Put(repr);
            return absl::OkStatus();
        }
    }
    return absl::InternalError("unknown number kind");
  }

  Tree tree_;
  NumberPolicy policy_;
  Sink out_;
};

inline absl::Status NotAnObject() {
  return absl::InvalidArgumentError("expected a JSON object");
}

}  // namespace keyverifier::core::json_internal

#endif  // KEYVERIFIER_SERVICE_CORE_CANONICAL_JSON_ENCODER_H_
