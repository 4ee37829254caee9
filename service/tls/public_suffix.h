// The Public Suffix List (publicsuffix.org): which domains are registries
// ("com", "co.uk") under which anyone may register, so that a wildcard
// directly beneath one ("*.co.uk") covers unrelated owners.
//
// Only the list's ICANN section is used by default: the private section
// ("s3.amazonaws.com", "github.io") names namespaces whose owner legitimately
// holds a wildcard certificate for them.
//
// Thread-safety: immutable after construction. Errors: NotFoundError for an
// unreadable file, InvalidArgumentError for a list without any rule.
// Rules are matched on the ASCII form; Unicode rules only match names given
// in Unicode, so punycode names under IDN suffixes are not recognised.
#ifndef KEYVERIFIER_SERVICE_TLS_PUBLIC_SUFFIX_H_
#define KEYVERIFIER_SERVICE_TLS_PUBLIC_SUFFIX_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::tls {

// Debian's copy (package publicsuffix).
inline constexpr char kDebianPublicSuffixList[] =
    "/usr/share/publicsuffix/public_suffix_list.dat";

class PublicSuffixList {
 public:
  enum class Sections { kIcannOnly, kAll };

  static absl::StatusOr<std::shared_ptr<const PublicSuffixList>> FromFile(
      const std::string& path, Sections sections = Sections::kIcannOnly);
  // The list's text format: one rule per line, "//" comments, "*." and "!"
  // prefixes, "// ===BEGIN PRIVATE DOMAINS===" starting the private section.
  static absl::StatusOr<std::shared_ptr<const PublicSuffixList>> FromText(
      absl::string_view text, Sections sections = Sections::kIcannOnly);

  // True if `domain` (lower case, no trailing dot) is itself a public
  // suffix; every single label is, by the list's implicit "*" rule.
  bool IsPublicSuffix(absl::string_view domain) const;

  size_t size() const { return exact_.size() + wildcard_.size() + exception_.size(); }

 private:
  PublicSuffixList() = default;
  absl::flat_hash_set<std::string> exact_;      // "co.uk"
  absl::flat_hash_set<std::string> wildcard_;   // "ck" for "*.ck"
  absl::flat_hash_set<std::string> exception_;  // "www.ck" for "!www.ck"
};

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_PUBLIC_SUFFIX_H_
