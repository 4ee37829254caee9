#include "service/store/key_store.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "service/core/server_name.h"

namespace keyverifier::store {

absl::Status ValidateWrite(const core::ServerKeys& response,
                           absl::string_view source, int64_t fetched_ts) {
  const std::string& server = response.server_name;
  // The store's own contract: a ServerKeys may be built by anyone, so the
  // names it is given are checked here, whoever parsed them before.
  if (absl::Status s = core::ServerName::Parse(server).status(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key response: bad server_name: ", s.message()));
  }
  if (absl::Status s = core::ServerName::Parse(source).status(); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key response for ", server, ": bad source: ", s.message()));
  }
  if (fetched_ts < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key response for ", server, " from ", source,
        ": fetched_ts is negative (", fetched_ts, ")"));
  }
  if (response.raw_json.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key response for ", server, " from ", source, ": raw_json is empty"));
  }
  if (response.verify_keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key response for ", server, " from ", source, ": no verify_keys"));
  }
  std::set<std::string> seen, seen_current;
  auto check = [&](const core::VerifyKey& key,
                   bool current) -> absl::Status {
    const char* list = current ? "verify_keys" : "old_verify_keys";
    if (!core::IsValidEd25519KeyId(key.key_id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("key response for ", server, " from ", source, ": ",
                       list, " has a bad key id \"", key.key_id, "\""));
    }
    // Once per list. In both lists (seen from notaries) it must be the same
    // key: the merge makes it one old key.
    if (!(current ? seen_current : seen).insert(key.key_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("key response for ", server, " from ", source,
                       ": key ", key.key_id, " is listed more than once in ", list));
    }
    if (!current) {
      for (const core::VerifyKey& c : response.verify_keys) {
        if (c.key_id == key.key_id && c.public_key != key.public_key) {
          return absl::InvalidArgumentError(
              absl::StrCat("key response for ", server, " from ", source, ": key id ",
                           key.key_id, " is given two different keys"));
        }
      }
    }
    if (current && !key.valid_until_ts.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key response for ", server, " from ", source,
                       ": current key ", key.key_id, " has no valid_until_ts"));
    }
    if (!current && !key.expired_ts.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key response for ", server, " from ", source,
                       ": old key ", key.key_id, " has no expired_ts"));
    }
    return absl::OkStatus();
  };
  for (const core::VerifyKey& key : response.verify_keys) {
    if (absl::Status s = check(key, true); !s.ok()) return s;
  }
  for (const core::VerifyKey& key : response.old_verify_keys) {
    if (absl::Status s = check(key, false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace keyverifier::store
