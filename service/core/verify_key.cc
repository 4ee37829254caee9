#include "service/core/verify_key.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::core {

bool IsValidEd25519KeyId(absl::string_view key_id) {
  constexpr absl::string_view kPrefix = "ed25519:";
  if (!absl::StartsWith(key_id, kPrefix) || key_id.size() == kPrefix.size()) {
    return false;
  }
  for (char c : key_id.substr(kPrefix.size())) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

absl::string_view KeyAlgorithm(absl::string_view key_id) {
  return key_id.substr(0, key_id.find(':'));
}

std::optional<int64_t> UsableUntil(const VerifyKey& key, std::optional<int64_t> confirmed_ts) {
  if (!key.valid_until_ts.has_value()) return std::nullopt;
  if (!confirmed_ts.has_value()) return key.valid_until_ts;
  const int64_t cap = *confirmed_ts > INT64_MAX - kMaxKeyValidityMs
                          ? INT64_MAX
                          : *confirmed_ts + kMaxKeyValidityMs;
  return std::min(*key.valid_until_ts, cap);
}

namespace {
// "valid until T" and, when the 7 days bind, why.
std::string Until(const VerifyKey& key, int64_t until) {
  return absl::StrCat("valid until ", until,
                      until < key.valid_until_ts.value_or(until)
                          ? absl::StrCat(" (7 days after the last response listing it, fetched at ",
                                         key.confirmed_ts.value_or(0), "; it says ",
                                         *key.valid_until_ts, ")")
                          : "");
}
}  // namespace

std::optional<std::string> KeyUnusableForEvent(const VerifyKey& key,
                                               const RoomVersion& room,
                                               int64_t origin_server_ts) {
  if (key.banned) return absl::StrCat("key ", key.key_id, " is banned by the operator");
  if (key.expired_ts.has_value() && *key.expired_ts < origin_server_ts) {
    return absl::StrCat("key ", key.key_id, " expired at ", *key.expired_ts,
                        ", before the event's origin_server_ts ",
                        origin_server_ts);
  }
  if (room.enforce_key_validity && !key.expired_ts.has_value()) {
    std::optional<int64_t> until = UsableUntil(key);
    if (!until.has_value()) {
      return absl::StrCat("key ", key.key_id, " has no valid_until_ts");
    }
    if (*until < origin_server_ts) {
      return absl::StrCat("key ", key.key_id, " is ", Until(key, *until),
                          ", before the event's origin_server_ts ", origin_server_ts,
                          " (room version ", room.id, ")");
    }
  }
  return std::nullopt;
}

std::optional<std::string> KeyUnusableForRequest(const VerifyKey& key,
                                                 int64_t now_ms) {
  if (key.banned) return absl::StrCat("key ", key.key_id, " is banned by the operator");
  if (key.expired_ts.has_value()) {
    return absl::StrCat("key ", key.key_id,
                        " is an old key; old keys cannot sign requests");
  }
  std::optional<int64_t> until = UsableUntil(key);
  if (!until.has_value()) {
    return absl::StrCat("key ", key.key_id, " has no valid_until_ts");
  }
  if (*until < now_ms) {
    return absl::StrCat("key ", key.key_id, " is ", Until(key, *until), ", before now (",
                        now_ms, ")");
  }
  return std::nullopt;
}

}  // namespace keyverifier::core
