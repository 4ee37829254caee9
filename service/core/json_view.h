// JsonView: a parsed document read in place (simdjson), with canonical
// encodings of its parts.
#ifndef KEYVERIFIER_SERVICE_CORE_JSON_VIEW_H_
#define KEYVERIFIER_SERVICE_CORE_JSON_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "service/core/canonical_json.h"
#include "service/core/json_value.h"

namespace keyverifier::core {

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

#endif  // KEYVERIFIER_SERVICE_CORE_JSON_VIEW_H_
