#include "service/tls/public_suffix.h"

#include "service/io/file.h"
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::tls {

absl::StatusOr<std::shared_ptr<const PublicSuffixList>> PublicSuffixList::FromFile(
    const std::string& path, Sections sections) {
  absl::StatusOr<std::string> text = io::ReadFileFromDisk(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("cannot read public suffix list ", path));
  }
  absl::StatusOr<std::shared_ptr<const PublicSuffixList>> list = FromText(*text, sections);
  if (!list.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("public suffix list ", path, ": ", list.status().message()));
  }
  return list;
}

absl::StatusOr<std::shared_ptr<const PublicSuffixList>> PublicSuffixList::FromText(
    absl::string_view text, Sections sections) {
  std::shared_ptr<PublicSuffixList> list(new PublicSuffixList());
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (absl::StrContains(l, "===BEGIN PRIVATE DOMAINS===")) {
      if (sections == Sections::kIcannOnly) break;
      continue;
    }
    if (l.empty() || absl::StartsWith(l, "//")) continue;
    l = l.substr(0, l.find_first_of(" \t"));
    std::string rule = absl::AsciiStrToLower(l);
    if (absl::StartsWith(rule, "!")) {
      list->exception_.insert(rule.substr(1));
    } else if (absl::StartsWith(rule, "*.")) {
      list->wildcard_.insert(rule.substr(2));
    } else {
      list->exact_.insert(rule);
    }
  }
  if (list->size() == 0) return absl::InvalidArgumentError("no rules");
  return std::shared_ptr<const PublicSuffixList>(std::move(list));
}

bool PublicSuffixList::IsPublicSuffix(absl::string_view domain) const {
  if (domain.empty()) return false;
  std::string d(domain);
  if (exception_.contains(d)) return false;
  if (exact_.contains(d)) return true;
  size_t dot = domain.find('.');
  if (dot == absl::string_view::npos) return true;  // the implicit "*" rule
  return wildcard_.contains(domain.substr(dot + 1));
}

}  // namespace keyverifier::tls
