#include "service/core/json_view.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "service/core/canonical_json_encoder.h"
#include "service/core/json_internal.h"
#include "simdjson.h"

namespace keyverifier::core {
namespace {

// Byte-wise (= code point) order of keys. Keys mostly differ in their first
// byte, which is compared before calling memcmp.
bool KeyLess(absl::string_view a, absl::string_view b) {
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

// How the encoder reads a JsonView's nodes.
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

}  // namespace

// simdjson (vectorised parsing and UTF-8 validation) parses; one pass over its
// DOM then lays the document out flat, every container's children next to
// each other and every object's members sorted, in one reused vector. The
// view declines whenever the input is invalid or needs what simdjson's DOM
// does not keep: the exact lexeme of a number that is not an int64, or the
// position of a problem.
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
          if (check_surrogates && json_internal::ContainsSurrogate(absl::string_view(k.data(), k.size()))) return false;
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
        return !(check_surrogates && json_internal::ContainsSurrogate(nodes[at].str));
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

absl::Status JsonView::AppendCanonicalJson(Ref r, NumberPolicy policy,
                                           std::string* out) const {
  if (!r) return absl::InvalidArgumentError("no such JSON value");
  return json_internal::Encoder<ViewTree>({&impl_->nodes, impl_->plain_strings}, policy, out)
      .Encode(r.index_);
}

absl::Status JsonView::AppendCanonicalJsonWithout(
    Ref object, std::initializer_list<absl::string_view> skip,
    NumberPolicy policy, std::string* out, std::vector<MemberSpan>* spans) const {
  if (!is_object(object)) return json_internal::NotAnObject();
  return json_internal::Encoder<ViewTree>({&impl_->nodes, impl_->plain_strings}, policy, out)
      .EncodeMembers(object.index_, skip, spans);
}

}  // namespace keyverifier::core
