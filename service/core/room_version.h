// The properties of each room version (1-12) that signing and verification
// depend on, as data. Everything version-dependent in the core reads this table
// instead of comparing version numbers.
//
// Pure and thread-safe (the table is immutable).
#ifndef KEYVERIFIER_SERVICE_CORE_ROOM_VERSION_H_
#define KEYVERIFIER_SERVICE_CORE_ROOM_VERSION_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/canonical_json.h"

namespace keyverifier::core {

enum class EventIdFormat {
  kExplicit,         // v1, v2: the event carries `event_id` ($opaque:server)
  kReferenceHash,    // v3: '$' + unpadded standard base64 of the reference hash
  kReferenceHashUrl, // v4+: '$' + unpadded URL-safe base64
};

// Which redaction algorithm applies (see redaction.h for the rules).
enum class RedactionRules {
  kV1,   // v1-v5
  kV6,   // v6, v7: m.room.aliases loses its special case
  kV8,   // v8: join_rules keeps `allow`
  kV9,   // v9, v10: member keeps join_authorised_via_users_server
  kV11,  // v11, v12
};

struct RoomVersion {
  absl::string_view id;
  EventIdFormat event_id_format;
  RedactionRules redaction;
  // v6+: the event must follow canonical JSON strictly (integers in range, no
  // fractions or exponents). Older versions are encoded as their signers did.
  NumberPolicy number_policy;
  // v5+: a key's valid_until_ts (capped at now + 7 days) must cover the event.
  bool enforce_key_validity;
  // v8+: a restricted join must also be signed by the server of
  // content.join_authorised_via_users_server.
  bool restricted_join_signatures;
};

// Errors: InvalidArgumentError for unknown or unsupported versions.
absl::StatusOr<const RoomVersion*> LookupRoomVersion(absl::string_view id);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_ROOM_VERSION_H_
