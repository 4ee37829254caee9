// Verifying a federation event (PDU): hashes and signatures, per room version
// (server-server API "Validating hashes and signatures on received events").
//
// Two steps so the caller can fetch keys in between without the core doing I/O:
//   1. PrepareEvent parses the event, computes its content hash, redacts it,
//      computes the bytes the signatures cover, the event id (v3+), and lists
//      the servers that must have signed it.
//   2. VerifyPreparedEvent checks those servers' signatures with the keys the
//      caller supplies and gives the verdict.
// Pure and thread-safe. PrepareEvent fails (InvalidArgumentError naming the
// field) for input that is not a usable event: not an object; sender,
// origin_server_ts or (v1, v2) event_id missing or malformed; a number the room
// version's canonical JSON rules refuse anywhere in the event; more than 65536
// bytes as canonical JSON (the spec's PDU limit). Everything else is a verdict.
#ifndef KEYVERIFIER_SERVICE_CORE_EVENT_VERIFIER_H_
#define KEYVERIFIER_SERVICE_CORE_EVENT_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"
#include "service/core/server_name.h"
#include "service/core/signed_json.h"
#include "service/core/verify_key.h"

namespace keyverifier::core {

struct PreparedEvent {
  const RoomVersion* room_version = nullptr;
  // The event's `signatures` (null when it has none). With signed_bytes this
  // is the whole redacted event; see RedactedEvent.
  Value signatures;
  // Canonical JSON of the redacted event without signatures/unsigned: what the
  // signatures cover and what the reference hash is taken of.
  std::string signed_bytes;
  std::string event_id;             // given (v1, v2) or computed (v3+)
  std::string content_hash;         // computed, unpadded base64
  bool content_hash_matches = false;
  std::string sender;
  int64_t origin_server_ts = 0;
  // Servers whose signature is required, sorted, unique, never empty: the
  // sender's (not for a third-party invite when another server is required),
  // v1/v2 the event_id's, v8+ for a restricted join the server of
  // content.join_authorised_via_users_server.
  std::vector<ServerName> required_servers;
};

// Reads the event straight from its text (JsonView) where it can and falls
// back to parsing it into Values for what the view leaves to ParseJson; both
// ways give the same result, errors included.
absl::StatusOr<PreparedEvent> PrepareEvent(absl::string_view event_json,
                                           const RoomVersion& room);
absl::StatusOr<PreparedEvent> PrepareEvent(const Value& event,
                                           const RoomVersion& room);

// The redacted event, signatures and hashes kept, unsigned removed: what a
// caller must use instead of an event whose content hash does not match.
absl::StatusOr<Value> RedactedEvent(const PreparedEvent& event);

struct EventVerdict {
  enum class Outcome { kValid, kValidButRedacted, kInvalid };
  Outcome outcome = Outcome::kInvalid;
  Reason reason = Reason::kOk;
  std::string message;
  struct Checked {
    std::string server;
    std::vector<std::string> key_ids;  // the keys whose signatures verified
  };
  std::vector<Checked> checked;
};
absl::string_view OutcomeName(EventVerdict::Outcome outcome);

// The keys known for a server (empty if none).
using KeyLookup = std::function<absl::Span<const VerifyKey>(absl::string_view)>;

EventVerdict VerifyPreparedEvent(const PreparedEvent& event, const KeyLookup& keys);

// Fills in `hashes.sha256` and `server`'s signature (the signer's side; for
// tests, fixtures and tools). For v1/v2 the event must already have event_id.
absl::Status HashAndSignEvent(Value* event, const RoomVersion& room,
                              absl::string_view server, absl::string_view key_id,
                              const Ed25519SigningKey& key);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_EVENT_VERIFIER_H_
