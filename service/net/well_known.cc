#include "service/net/well_known.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_name.h"

namespace keyverifier::net {

absl::StatusOr<core::ServerName> ParseWellKnownBody(absl::string_view body) {
  if (body.size() > kMaxWellKnownBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        ".well-known response is ", body.size(), " bytes; the limit is ",
        kMaxWellKnownBytes));
  }
  core::ParseOptions limits;
  limits.max_bytes = kMaxWellKnownBytes;
  absl::StatusOr<core::Value> v = core::ParseJson(body, limits);
  if (!v.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(".well-known response is not JSON: ", v.status().message()));
  }
  if (!v->is_object()) {
    return absl::InvalidArgumentError(".well-known response is not a JSON object");
  }
  const core::Value* server = v->Find("m.server");
  if (server == nullptr || !server->is_string()) {
    return absl::InvalidArgumentError(
        ".well-known response has no m.server string");
  }
  absl::StatusOr<core::ServerName> name = core::ServerName::Parse(server->string_value());
  if (!name.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(".well-known m.server: ", name.status().message()));
  }
  return name;
}

absl::Duration WellKnownCacheTime(absl::string_view cache_control,
                                  const CachePolicy& policy) {
  absl::Duration ttl = policy.default_ttl;
  for (absl::string_view directive : absl::StrSplit(cache_control, ',')) {
    directive = absl::StripAsciiWhitespace(directive);
    std::string lower = absl::AsciiStrToLower(directive);
    if (lower == "no-store" || lower == "no-cache") return absl::ZeroDuration();
    if (absl::StartsWith(lower, "max-age=")) {
      absl::string_view value = absl::StripAsciiWhitespace(directive.substr(8));
      if (absl::ConsumePrefix(&value, "\"")) absl::ConsumeSuffix(&value, "\"");
      int64_t seconds = 0;
      if (absl::SimpleAtoi(value, &seconds) && seconds >= 0) {
        ttl = absl::Seconds(seconds);
      }
    }
  }
  return std::min(ttl, policy.max_ttl);
}

}  // namespace keyverifier::net
