// Server key responses (service/core/server_keys.h: ParseServerKeys,
// TlsFingerprints): the body of GET /_matrix/key/v2/server, as a server
// sends it. Seeds are signed with the spec's test key, so mutations reach
// the signature checks and what comes after them.
//
// Invariants:
// - Parsing the text and the parsed Value give the same keys (or the same
//   error); parsing is deterministic.
// - An accepted response names a valid server name, has at least one current
//   key, every current key carries the response's valid_until_ts and a valid
//   ed25519 key id, every old key an expired_ts.
// - It is accepted again from its canonical form (the signatures cover it)
//   and when its own server name is expected; refused when another is.
// - TlsFingerprints lists only 32-byte digests.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_keys.h"
#include "service/core/server_name.h"
#include "service/core/verify_key.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::core {
namespace {

bool SameKeys(const ServerKeys& a, const ServerKeys& b) {
  return a.server_name == b.server_name && a.valid_until_ts == b.valid_until_ts &&
         a.verify_keys == b.verify_keys && a.old_verify_keys == b.old_verify_keys &&
         a.notaries == b.notaries;
}

std::string Describe(const absl::StatusOr<ServerKeys>& k) {
  if (!k.ok()) return k.status().ToString();
  std::string out = absl::StrCat(k->server_name, " ", k->valid_until_ts);
  for (const VerifyKey& key : k->AllKeys()) {
    absl::StrAppend(&out, " ", key.key_id, "/", key.valid_until_ts.value_or(-1), "/",
                    key.expired_ts.value_or(-1));
  }
  return out;
}

}  // namespace
}  // namespace keyverifier::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::core;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  for (const std::string& digest : TlsFingerprints(text)) FUZZ_CHECK(digest.size() == 32);

  const absl::StatusOr<ServerKeys> keys = ParseServerKeys(text);
  FUZZ_CHECK_EQ(Describe(keys), Describe(ParseServerKeys(text)));
  const absl::StatusOr<Value> parsed = ParseJson(text);
  if (parsed.ok()) {
    const absl::StatusOr<ServerKeys> from_value = ParseServerKeys(*parsed);
    FUZZ_CHECK_EQ(Describe(keys), Describe(from_value));
  }
  if (!keys.ok()) return 0;
  FUZZ_CHECK(parsed.ok());
  FUZZ_CHECK_EQ(keys->raw_json, std::string(text));

  FUZZ_CHECK_MSG(ServerName::Parse(keys->server_name).ok(), keys->server_name);
  FUZZ_CHECK(!keys->verify_keys.empty());
  FUZZ_CHECK(keys->notaries.empty());
  for (const VerifyKey& key : keys->verify_keys) {
    FUZZ_CHECK_MSG(IsValidEd25519KeyId(key.key_id), key.key_id);
    FUZZ_CHECK(key.valid_until_ts == keys->valid_until_ts && !key.expired_ts);
  }
  for (const VerifyKey& key : keys->old_verify_keys) {
    FUZZ_CHECK_MSG(IsValidEd25519KeyId(key.key_id), key.key_id);
    FUZZ_CHECK(key.expired_ts.has_value() && !key.valid_until_ts);
  }

  absl::StatusOr<std::string> canonical = CanonicalJson(*parsed);
  FUZZ_CHECK_MSG(canonical.ok(), canonical.status().ToString());
  const absl::StatusOr<ServerKeys> again = ParseServerKeys(*canonical);
  FUZZ_CHECK_MSG(again.ok() && SameKeys(*again, *keys), Describe(again));

  ServerKeyExpectations expect;
  expect.server_name = keys->server_name;
  FUZZ_CHECK(ParseServerKeys(text, expect).ok());
  expect.server_name = keys->server_name + "x";
  FUZZ_CHECK(!ParseServerKeys(text, expect).ok());
  return 0;
}
