// The .well-known/matrix/server body and its Cache-Control header
// (service/net/well_known.h). The whole input is tried as the body and as
// the header.
//
// Invariants:
// - An accepted body yields exactly its m.server string, which is a valid
//   server name; a body is accepted exactly when it is a JSON object (within
//   the size limit) whose m.server is a server name. Deterministic.
// - The cache time is never negative and never above the policy's maximum;
//   no-store / no-cache anywhere in the list make it zero; an empty header
//   gives the default.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_name.h"
#include "service/net/well_known.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const absl::StatusOr<core::ServerName> server = net::ParseWellKnownBody(text);
  const absl::StatusOr<core::ServerName> server_again = net::ParseWellKnownBody(text);
  FUZZ_CHECK_EQ(server.status().ToString(), server_again.status().ToString());

  bool expected = false;
  std::string expected_server;
  if (size <= net::kMaxWellKnownBytes) {
    absl::StatusOr<core::Value> v = core::ParseJson(text);
    const core::Value* m = v.ok() && v->is_object() ? v->Find("m.server") : nullptr;
    if (m != nullptr && m->is_string() && core::ServerName::Parse(m->string_value()).ok()) {
      expected = true;
      expected_server = m->string_value();
    }
  }
  FUZZ_CHECK_MSG(server.ok() == expected, server.status().ToString());
  if (server.ok()) {
    FUZZ_CHECK_EQ(server->str(), expected_server);
    FUZZ_CHECK_EQ(server->str(), server_again->str());
  }

  net::CachePolicy policy;
  const absl::Duration ttl = net::WellKnownCacheTime(text, policy);
  FUZZ_CHECK(ttl >= absl::ZeroDuration());
  FUZZ_CHECK(ttl <= policy.max_ttl);
  bool no_store = false;
  for (absl::string_view directive : absl::StrSplit(text, ',')) {
    const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(directive));
    no_store = no_store || lower == "no-store" || lower == "no-cache";
  }
  if (no_store) FUZZ_CHECK(ttl == absl::ZeroDuration());
  if (absl::StripAsciiWhitespace(text).empty()) FUZZ_CHECK(ttl == policy.default_ttl);
  return 0;
}
