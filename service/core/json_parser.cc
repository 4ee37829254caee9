#include "service/core/json_parser.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/core/json_internal.h"
#include "service/core/json_view.h"
// Vectorised scanning of string contents (SSE2 is part of x86-64).
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif
#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"
#include "simdjson.h"

namespace keyverifier::core {
namespace {

using json_internal::ContainsSurrogate;
using json_internal::IsDigit;
using json_internal::JsonNumberLength;
using json_internal::SetNumberFromLexeme;

// The numbers RapidJSON refused, as (index among all numbers of the document
// in order, lexeme); see StandInForLongNumbers.
using LongNumbers = std::vector<std::pair<size_t, std::string>>;

// RapidJSON refuses a number it could not hold in a double (kParseErrorNumber-
// TooBig: 309+ integer digits, or "0e400"), even when asked only for the
// lexeme, but room versions 1-5 must read such numbers as Python does. This
// replaces every number that might be refused (any with an exponent, any
// longer than 300 characters) by "0" and spaces, keeping all byte offsets,
// and returns the real lexemes for the builder. Strings are skipped; anything
// that is not JSON is left alone for the parser to report.
LongNumbers StandInForLongNumbers(std::string* json) {
  LongNumbers numbers;
  std::string& s = *json;
  size_t index = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;
      }
      ++i;
      continue;
    }
    size_t n = s[i] == '-' || IsDigit(s[i])
                   ? JsonNumberLength(absl::string_view(s).substr(i))
                   : 0;
    if (n == 0) {
      ++i;
      continue;
    }
    absl::string_view lexeme(s.data() + i, n);
    if (n > 300 || lexeme.find_first_of("eE") != absl::string_view::npos) {
      numbers.emplace_back(index, std::string(lexeme));
      s[i] = '0';
      std::fill(s.begin() + i + 1, s.begin() + i + n, ' ');
    }
    ++index;
    i += n;
  }
  return numbers;
}

// Offset of the first byte that does not begin a well-formed UTF-8 sequence
// (Unicode table 3-7: no overlong forms, surrogates or code points above
// U+10FFFF). Only used to name the position once validation has failed.
size_t FirstInvalidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t continuation;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      continuation = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      continuation = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      continuation = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    for (size_t k = 1; k <= continuation; ++k) {
      if (i + k >= s.size()) return i;
      const unsigned char d = s[i + k];
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) return i;
    }
    i += continuation + 1;
  }
  return s.size();
}

// Puts an object's members in canonical (code point = byte) order. Returns a
// duplicated key, if any, in `*duplicate`.
bool SortMembersUnique(std::vector<Value::Member>& m, std::string* duplicate) {
  std::sort(m.begin(), m.end(), [](const Value::Member& a, const Value::Member& b) {
    return a.first < b.first;
  });
  for (size_t i = 1; i < m.size(); ++i) {
    if (m[i - 1].first == m[i].first) {
      *duplicate = m[i].first;
      return false;
    }
  }
  return true;
}

}  // namespace

// SAX handler building Values on an explicit stack (RapidJSON runs in iterative
// mode, so deep input cannot exhaust the C++ stack either). Children of all
// open containers are collected on two shared scratch stacks and moved into
// an exactly-sized vector when their container closes, so building a document
// allocates once per container instead of growing vectors element by element.
class JsonBuilder {
 public:
  // `check_surrogates`: the input has \u escapes, so decoded strings may
  // contain lone surrogates (raw input was already checked as UTF-8).
  // Scratch space reused by every parse on a thread (cleared, capacity kept).
  struct Scratch;
  JsonBuilder(int max_depth, bool check_surrogates, Scratch& scratch);

  bool Null() { return Add(Value()); }
  bool Bool(bool b) { return Add(Value::Bool(b)); }
  bool Int(int) { return false; }  // never called with kParseNumbersAsStrings
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* str, rapidjson::SizeType len, bool) {
    absl::string_view lexeme(str, len);
    if (next_long_ < long_numbers_.size() &&
        long_numbers_[next_long_].first == numbers_seen_) {
      lexeme = long_numbers_[next_long_++].second;  // `str` is a stand-in
    }
    ++numbers_seen_;
    Value v;
    v.type_ = Value::Type::kNumber;
    SetNumberFromLexeme(lexeme, &v.number_kind_, &v.int_, &v.str_);
    return Add(std::move(v));
  }
  // The real lexemes of numbers replaced by StandInForLongNumbers.
  void set_long_numbers(LongNumbers numbers) { long_numbers_ = std::move(numbers); }
  bool String(const char* str, rapidjson::SizeType len, bool) {
    Value v;
    v.type_ = Value::Type::kString;
    v.str_.assign(str, len);
    if (check_surrogates_ && ContainsSurrogate(v.str_)) {
      error_ = "string contains a lone UTF-16 surrogate escape";
      return false;
    }
    return Add(std::move(v));
  }
  bool Key(const char* str, rapidjson::SizeType len, bool) {
    key_.assign(str, len);
    if (check_surrogates_ && ContainsSurrogate(key_)) {
      error_ = "object key contains a lone UTF-16 surrogate escape";
      return false;
    }
    return true;
  }
  bool StartObject() { return Open(true); }
  bool StartArray() { return Open(false); }

  bool EndObject(rapidjson::SizeType) {
    const size_t begin = open_.back().begin;
    key_ = std::move(open_.back().key);
    open_.pop_back();
    Value v = Value::Object();
    v.members_.reserve(members_.size() - begin);
    std::move(members_.begin() + begin, members_.end(),
              std::back_inserter(v.members_));
    members_.resize(begin);
    std::string duplicate;
    if (!SortMembersUnique(v.members_, &duplicate)) {
      error_ = absl::StrCat("duplicate key \"", duplicate, "\" in object");
      return false;
    }
    return Add(std::move(v));
  }
  bool EndArray(rapidjson::SizeType) {
    const size_t begin = open_.back().begin;
    key_ = std::move(open_.back().key);
    open_.pop_back();
    Value v = Value::Array();
    v.array_.reserve(items_.size() - begin);
    std::move(items_.begin() + begin, items_.end(), std::back_inserter(v.array_));
    items_.resize(begin);
    return Add(std::move(v));
  }

  Value TakeRoot() { return std::move(root_); }
  const std::string& error() const { return error_; }

 private:
  struct OpenContainer {
    bool is_object;
    size_t begin;     // first child's index in members_ or items_
    std::string key;  // the key this container will have in its parent
  };

  bool Open(bool is_object) {
    if (static_cast<int>(open_.size()) >= max_depth_) {
      error_ = absl::StrCat("nesting deeper than ", max_depth_, " levels");
      return false;
    }
    open_.push_back({is_object, is_object ? members_.size() : items_.size(),
                     std::move(key_)});
    return true;
  }

  bool Add(Value v) {
    if (open_.empty()) {
      root_ = std::move(v);
    } else if (open_.back().is_object) {
      members_.emplace_back(std::move(key_), std::move(v));
    } else {
      items_.push_back(std::move(v));
    }
    return true;
  }


 public:
  struct Scratch {
    std::vector<OpenContainer> open;
    std::vector<Value::Member> members;  // children of open objects
    std::vector<Value> items;            // children of open arrays
  };

 private:
  const int max_depth_;
  const bool check_surrogates_;
  std::vector<OpenContainer>& open_;
  std::vector<Value::Member>& members_;
  std::vector<Value>& items_;
  std::string key_;
  Value root_;
  std::string error_;
  LongNumbers long_numbers_;
  size_t next_long_ = 0;     // in long_numbers_
  size_t numbers_seen_ = 0;  // RawNumber calls so far
};

JsonBuilder::JsonBuilder(int max_depth, bool check_surrogates, Scratch& scratch)
    : max_depth_(max_depth),
      check_surrogates_(check_surrogates),
      open_(scratch.open),
      members_(scratch.members),
      items_(scratch.items) {
  // A failed parse may have left children behind.
  open_.clear();
  members_.clear();
  items_.clear();
}

absl::StatusOr<Value> ParseJson(absl::string_view text,
                                const ParseOptions& options) {
  if (text.size() > options.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON is ", text.size(), " bytes; the limit is ",
                     options.max_bytes));
  }
  {
    // The common case: simdjson through a reused view.
    thread_local JsonView view;
    if (view.Parse(text, options)) return view.ToValue(view.root());
  }
  const bool check_surrogates = text.find("\\u") != absl::string_view::npos;
  // UTF-8 is checked once over the whole input with simdjson's vectorised
  // validator, which is much faster than RapidJSON's per-character check.
  // Escapes are RapidJSON's to decode; the builder rejects the one thing
  // they can add that is not UTF-8 (lone surrogates).
  if (!simdjson::validate_utf8(text.data(), text.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid JSON at byte ", FirstInvalidUtf8(text), ": invalid UTF-8"));
  }
  // The in-situ stream below stops at a NUL byte; JSON never contains a raw
  // one, so refuse it here rather than ignore what follows it.
  // (An empty view may have no data at all, which memchr must not be given.)
  if (const void* nul = text.empty() ? nullptr : std::memchr(text.data(), '\0', text.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid JSON at byte ",
        static_cast<const char*>(nul) - text.data(), ": NUL byte"));
  }
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag |
                              rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  thread_local JsonBuilder::Scratch scratch;
  for (bool stand_ins : {false, true}) {
    // In-situ parsing decodes strings in a private copy of the input instead
    // of copying them through RapidJSON's stack.
    std::string buffer;
    buffer.reserve(text.size() + 16);  // room for the padding below
    buffer.assign(text.data(), text.size());
    JsonBuilder builder(options.max_depth, check_surrogates, scratch);
    if (stand_ins) builder.set_long_numbers(StandInForLongNumbers(&buffer));
    // RapidJSON's SSE2 scanning loads aligned 16-byte blocks, and the block
    // holding the terminating NUL may reach up to 15 bytes past it: keep
    // those bytes inside the buffer.
    buffer.append(16, '\0');
    rapidjson::InsituStringStream stream(buffer.data());
    rapidjson::Reader reader;
    rapidjson::ParseResult result = reader.Parse<kFlags>(stream, builder);
    if (!result.IsError()) return builder.TakeRoot();
    if (result.Code() == rapidjson::kParseErrorNumberTooBig && !stand_ins) {
      continue;
    }
    const size_t at = result.Offset();
    const unsigned char c = at < text.size() ? text[at] : 0;
    std::string what = builder.error();
    if (what.empty() && c != 0 && c < 0x20 &&
        result.Code() == rapidjson::kParseErrorStringEscapeInvalid) {
      // RapidJSON files a raw control character under "invalid escape".
      what = absl::StrCat("unescaped control character 0x",
                          absl::Hex(c, absl::kZeroPad2), " in string");
    } else if (what.empty()) {
      what = rapidjson::GetParseError_En(result.Code());
    }
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at byte ", at, ": ", what));
  }
  return absl::InternalError("unreachable: the second parse always returns");
}

}  // namespace keyverifier::core
