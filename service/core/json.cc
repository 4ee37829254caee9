#include "service/core/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <locale.h>
#include <stdlib.h>
#include <iterator>
#include <system_error>

#include "absl/strings/str_cat.h"
// Vectorised scanning of string contents (SSE2 is part of x86-64).
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif
#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"
#include "simdjson.h"

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

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Length of the longest prefix of `s` that is a JSON number, 0 if none; this
// is where a JSON reader's number token ends ("1.5.3" -> 3, "01" -> 1).
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

bool LooksLikeJsonNumber(absl::string_view s) {
  return !s.empty() && JsonNumberLength(s) == s.size();
}

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

// True if `s` contains the UTF-8 form of a UTF-16 surrogate (U+D800..U+DFFF),
// which RapidJSON lets through when it comes from a lone \uDCxx escape.
bool ContainsSurrogate(absl::string_view s) {
  const char* p = s.data();
  const char* end = p + s.size();
  while ((p = static_cast<const char*>(std::memchr(p, 0xED, end - p)))) {
    if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xA0) return true;
    ++p;
  }
  return false;
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

// ---------------------------------------------------------------- JsonView

// simdjson (vectorised parsing and UTF-8 validation) parses; one pass over its
// DOM then lays the document out flat, every container's children next to
// each other and every object's members sorted, in one reused vector. The
// view declines whenever the input is invalid or needs what simdjson's DOM
// does not keep: the exact lexeme of a number that is not an int64, or the
// position of a problem.
// Byte-wise (= code point) order of keys. Keys mostly differ in their first
// byte, which is compared before calling memcmp.
inline bool KeyLess(absl::string_view a, absl::string_view b) {
  if (!a.empty() && !b.empty() && a[0] != b[0]) {
    return static_cast<unsigned char>(a[0]) < static_cast<unsigned char>(b[0]);
  }
  return a < b;
}

struct ViewNode {
  Value::Type type = Value::Type::kNull;
  bool bool_value = false;
  uint32_t first = 0;  // containers: index of the first child
  uint32_t count = 0;  // containers: number of children
  int64_t int_value = 0;
  absl::string_view key;  // as a member of an object
  absl::string_view str;  // strings; points into the parser's string buffer
};

struct JsonView::Impl {
  using KeyedElements =
      std::vector<std::pair<std::string_view, simdjson::dom::element>>;

  simdjson::dom::parser parser;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end; a reused,
  // padded copy saves it allocating one per document.
  std::string padded;
  std::vector<ViewNode> nodes;
  // The (key, element) handles of all open objects share one stack; each
  // object sorts its own range and pops it when done.
  KeyedElements kvs;
  int max_depth = 0;
  bool check_surrogates = false;
  // The input has no backslash: every string is as written, and as JSON
  // forbids raw quotes and control characters in strings, none needs an
  // escape in canonical JSON either.
  bool plain_strings = false;

  bool Build(simdjson::dom::element e, uint32_t at, int depth) {
    switch (e.type()) {
      case simdjson::dom::element_type::OBJECT: {
        if (depth >= max_depth) return false;
        const size_t begin = kvs.size();
        simdjson::dom::object obj = e.get_object().value_unsafe();
        for (simdjson::dom::key_value_pair kv : obj) {
          kvs.emplace_back(kv.key, kv.value);
        }
        const size_t end = kvs.size();
        std::sort(kvs.begin() + begin, kvs.begin() + end,
                  [](const auto& a, const auto& b) {
                    return KeyLess(absl::string_view(a.first.data(), a.first.size()),
                                   absl::string_view(b.first.data(), b.first.size()));
                  });
        const uint32_t first = static_cast<uint32_t>(nodes.size());
        nodes.resize(first + (end - begin));
        nodes[at].type = Value::Type::kObject;
        nodes[at].first = first;
        nodes[at].count = static_cast<uint32_t>(end - begin);
        for (size_t i = begin; i < end; ++i) {
          if (i > begin && kvs[i - 1].first == kvs[i].first) return false;  // duplicate
          const std::string_view k = kvs[i].first;
          if (check_surrogates && ContainsSurrogate(absl::string_view(k.data(), k.size()))) return false;
          const uint32_t child = first + static_cast<uint32_t>(i - begin);
          nodes[child].key = absl::string_view(k.data(), k.size());
          if (!Build(kvs[i].second, child, depth + 1)) return false;
        }
        kvs.resize(begin);
        return true;
      }
      case simdjson::dom::element_type::ARRAY: {
        if (depth >= max_depth) return false;
        simdjson::dom::array arr = e.get_array().value_unsafe();
        const size_t n = arr.size();
        if (n >= 0xFFFFFF) return false;  // simdjson's count saturates there
        const uint32_t first = static_cast<uint32_t>(nodes.size());
        nodes.resize(first + n);
        nodes[at].type = Value::Type::kArray;
        nodes[at].first = first;
        nodes[at].count = static_cast<uint32_t>(n);
        uint32_t child = first;
        for (simdjson::dom::element item : arr) {
          if (!Build(item, child++, depth + 1)) return false;
        }
        return true;
      }
      case simdjson::dom::element_type::INT64:
        nodes[at].type = Value::Type::kNumber;
        nodes[at].int_value = e.get_int64().value_unsafe();
        return true;
      case simdjson::dom::element_type::STRING: {
        const std::string_view sv = e.get_string().value_unsafe();
        nodes[at].type = Value::Type::kString;
        nodes[at].str = absl::string_view(sv.data(), sv.size());
        return !(check_surrogates && ContainsSurrogate(nodes[at].str));
      }
      case simdjson::dom::element_type::BOOL:
        nodes[at].type = Value::Type::kBool;
        nodes[at].bool_value = e.get_bool().value_unsafe();
        return true;
      case simdjson::dom::element_type::NULL_VALUE:
        return true;
      default:  // UINT64, DOUBLE: the lexeme is needed
        return false;
    }
  }

  // Fills the null Value `out` in place (no Value is moved).
  void Fill(uint32_t at, Value* out) const {
    const ViewNode& n = nodes[at];
    out->type_ = n.type;
    switch (n.type) {
      case Value::Type::kNull: break;
      case Value::Type::kBool: out->bool_ = n.bool_value; break;
      case Value::Type::kNumber: out->int_ = n.int_value; break;
      case Value::Type::kString: out->str_.assign(n.str.data(), n.str.size()); break;
      case Value::Type::kArray:
        out->array_.resize(n.count);
        for (uint32_t i = 0; i < n.count; ++i) Fill(n.first + i, &out->array_[i]);
        break;
      case Value::Type::kObject:
        out->members_.reserve(n.count);
        for (uint32_t i = 0; i < n.count; ++i) {
          const ViewNode& m = nodes[n.first + i];
          out->members_.emplace_back(std::string(m.key), Value());
          Fill(n.first + i, &out->members_.back().second);
        }
        break;
    }
  }
};

JsonView::JsonView() : impl_(std::make_unique<Impl>()) {}
JsonView::~JsonView() = default;

bool JsonView::Parse(absl::string_view text, const ParseOptions& options) {
  Impl& m = *impl_;
  m.nodes.clear();
  m.kvs.clear();
  if (text.size() > options.max_bytes) return false;
  m.max_depth = options.max_depth;
  m.plain_strings = text.find('\\') == absl::string_view::npos;
  m.check_surrogates =
      !m.plain_strings && text.find("\\u") != absl::string_view::npos;
  m.padded.assign(text.data(), text.size());
  m.padded.resize(text.size() + simdjson::SIMDJSON_PADDING, '\0');
  simdjson::dom::element root;
  if (m.parser.parse(m.padded.data(), text.size(), false).get(root) !=
      simdjson::SUCCESS) {
    return false;
  }
  m.nodes.resize(1);
  if (!m.Build(root, 0, 0)) {
    m.nodes.clear();
    return false;
  }
  return true;
}

JsonView::Ref JsonView::root() const {
  return impl_->nodes.empty() ? Ref() : Ref(0);
}

Value::Type JsonView::type(Ref r) const {
  return r ? impl_->nodes[r.index_].type : Value::Type::kNull;
}

absl::string_view JsonView::string_value(Ref r) const {
  return r ? impl_->nodes[r.index_].str : absl::string_view();
}

int64_t JsonView::int_value(Ref r) const {
  return r ? impl_->nodes[r.index_].int_value : 0;
}

JsonView::Ref JsonView::Find(Ref object, absl::string_view key) const {
  if (!is_object(object)) return Ref();
  const ViewNode& o = impl_->nodes[object.index_];
  const auto begin = impl_->nodes.begin() + o.first;
  const auto end = begin + o.count;
  auto it = end;
  if (o.count <= 16) {
    // Small objects (nearly all): a scan that compares lengths first.
    for (auto n = begin; n != end; ++n) {
      if (n->key.size() == key.size() &&
          std::memcmp(n->key.data(), key.data(), key.size()) == 0) {
        it = n;
        break;
      }
    }
  } else {
    it = std::lower_bound(
        begin, end, key,
        [](const ViewNode& n, absl::string_view k) { return KeyLess(n.key, k); });
    if (it != end && it->key != key) it = end;
  }
  if (it == end) return Ref();
  return Ref(static_cast<uint32_t>(it - impl_->nodes.begin()));
}

size_t JsonView::size(Ref container) const {
  const Value::Type t = type(container);
  return t == Value::Type::kObject || t == Value::Type::kArray
             ? impl_->nodes[container.index_].count
             : 0;
}

JsonView::Ref JsonView::child(Ref container, size_t i) const {
  if (i >= size(container)) return Ref();
  return Ref(impl_->nodes[container.index_].first + static_cast<uint32_t>(i));
}

absl::string_view JsonView::key(Ref container, size_t i) const {
  Ref c = child(container, i);
  return c ? impl_->nodes[c.index_].key : absl::string_view();
}

Value JsonView::ToValue(Ref r) const {
  Value v;
  if (r) impl_->Fill(r.index_, &v);
  return v;
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

// ---------------------------------------------------------------- Encoder

namespace {

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

void AppendEscapedString(absl::string_view s, Sink& out) {
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

// Python's repr() of the double nearest to `lexeme`: shortest round-trip digits,
// fixed notation for decimal exponents in [-4, 16), scientific otherwise.
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

// How the encoder reads a tree: Values, or a JsonView's nodes.
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

struct ViewTree {
  using Node = uint32_t;
  const std::vector<ViewNode>* nodes;
  bool plain;
  bool plain_strings() const { return plain; }
  const ViewNode& at(Node n) const { return (*nodes)[n]; }
  Value::Type type(Node n) const { return at(n).type; }
  bool bool_value(Node n) const { return at(n).bool_value; }
  NumberKind number_kind(Node) const { return NumberKind::kInteger; }
  int64_t int_value(Node n) const { return at(n).int_value; }
  absl::string_view text(Node n) const { return at(n).str; }
  size_t size(Node n) const { return at(n).count; }
  Node item(Node n, size_t i) const { return at(n).first + static_cast<Node>(i); }
  absl::string_view key(Node n, size_t i) const { return at(item(n, i)).key; }
  Node member(Node n, size_t i) const { return item(n, i); }
};

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

absl::Status NotAnObject() {
  return absl::InvalidArgumentError("expected a JSON object");
}

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

absl::Status JsonView::AppendCanonicalJson(Ref r, NumberPolicy policy,
                                           std::string* out) const {
  if (!r) return absl::InvalidArgumentError("no such JSON value");
  return Encoder<ViewTree>({&impl_->nodes, impl_->plain_strings}, policy, out)
      .Encode(r.index_);
}

absl::Status JsonView::AppendCanonicalJsonWithout(
    Ref object, std::initializer_list<absl::string_view> skip,
    NumberPolicy policy, std::string* out, std::vector<MemberSpan>* spans) const {
  if (!is_object(object)) return NotAnObject();
  return Encoder<ViewTree>({&impl_->nodes, impl_->plain_strings}, policy, out)
      .EncodeMembers(object.index_, skip, spans);
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
