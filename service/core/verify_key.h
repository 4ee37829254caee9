// A server's ed25519 verify key as the verifier knows it, with the validity
// information from the key response it came from, and the rules deciding when
// such a key may verify an event or a request (server-server API "Retrieving
// server keys"; room versions 5+ "Signing key validity period").
//
// Times are Matrix timestamps: milliseconds since the Unix epoch. Callers pass
// `now_ms`; nothing here reads a clock. Pure and thread-safe.
#ifndef KEYVERIFIER_SERVICE_CORE_VERIFY_KEY_H_
#define KEYVERIFIER_SERVICE_CORE_VERIFY_KEY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "service/core/crypto.h"
#include "service/core/room_version.h"

namespace keyverifier::core {

struct VerifyKey {
  std::string key_id;  // "ed25519:<version>"
  Ed25519PublicKey public_key{};
  // Set for current keys (`verify_keys`): the response's valid_until_ts.
  std::optional<int64_t> valid_until_ts;
  // Set for old keys (`old_verify_keys`): when the key stopped being used.
  std::optional<int64_t> expired_ts;
  // When the last fetched response listing the key was fetched: the start
  // of the 7 days it is trusted for (below). Unset for keys the operator
  // pinned, which are trusted for their valid_until_ts.
  std::optional<int64_t> confirmed_ts;
  // The operator refuses this key (a compromised one, say): it verifies
  // nothing.
  bool banned = false;

  bool operator==(const VerifyKey& o) const {
    return key_id == o.key_id && public_key == o.public_key &&
           valid_until_ts == o.valid_until_ts && expired_ts == o.expired_ts &&
           confirmed_ts == o.confirmed_ts && banned == o.banned;
  }
};

// The spec caps how far ahead a key is trusted, whatever valid_until_ts says.
inline constexpr int64_t kMaxKeyValidityMs = int64_t{7} * 24 * 3600 * 1000;

// A current key's usable validity: its valid_until_ts, but no later than 7
// days after the last response that confirmed it (`confirmed_ts`, when
// known). Events (room versions 5+) and requests are checked against it; a
// key its server stops publishing therefore stops verifying new events
// within 7 days. nullopt without a valid_until_ts.
std::optional<int64_t> UsableUntil(const VerifyKey& key, std::optional<int64_t> confirmed_ts);
inline std::optional<int64_t> UsableUntil(const VerifyKey& key) {
  return UsableUntil(key, key.confirmed_ts);
}

// True for "ed25519:" followed by one or more of [a-zA-Z0-9_].
bool IsValidEd25519KeyId(absl::string_view key_id);
// The algorithm part of a key id ("ed25519" of "ed25519:abc").
absl::string_view KeyAlgorithm(absl::string_view key_id);

// Whether `key` may verify an event of `room` sent at `origin_server_ts`.
// Returns nullopt if it may, otherwise why not. Rules:
//  - never a banned key;
//  - an old key only for events sent no later than its expired_ts (the
//    spec ignores keys "known to have expired prior to" the event);
//  - room versions 5+: UsableUntil(key) >= origin_server_ts (the lesser of
//    valid_until_ts and 7 days, the 7 days counted from the last response
//    that confirmed the key);
//  - room versions 1-4 ignore valid_until_ts.
std::optional<std::string> KeyUnusableForEvent(const VerifyKey& key,
                                               const RoomVersion& room,
                                               int64_t origin_server_ts);

// Whether `key` may verify a federation request made now: only current keys
// (old keys sign events only, banned keys nothing) whose usable validity has
// not passed.
std::optional<std::string> KeyUnusableForRequest(const VerifyKey& key,
                                                 int64_t now_ms);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_VERIFY_KEY_H_
