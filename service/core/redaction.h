// The redaction algorithm of each room version (client-server API
// "Redactions", as referenced by the room version specs): which top-level keys
// survive, and which keys of `content` survive for which event types.
//
// Pure and thread-safe. Redacting never fails: whatever is not an object where
// an object is expected is simply dropped, as the reference implementations do.
#ifndef KEYVERIFIER_SERVICE_CORE_REDACTION_H_
#define KEYVERIFIER_SERVICE_CORE_REDACTION_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"

namespace keyverifier::core {

// What redaction keeps of one event: the rules in one place, for RedactEvent
// (which edits a Value) and for the event verifier (which writes the redacted
// event's canonical form straight from the parsed input).
struct RedactionPlan {
  RedactionRules rules = RedactionRules::kV1;
  // Keys of `content` kept; all of them when keep_all_content.
  absl::Span<const absl::string_view> content_keys;
  bool keep_all_content = false;
  // Room version 11 member events: of `content.third_party_invite` (when an
  // object) only its `signed` member is kept.
  bool third_party_invite_signed_only = false;

  bool KeepTopLevel(absl::string_view key) const;
  bool KeepContent(absl::string_view key) const;
};

// The plan for an event of type `type` (empty if the event has no string type).
RedactionPlan PlanRedaction(RedactionRules rules, absl::string_view type);

// Redacts `event` (an object) in place. The result always has a `content`
// object (empty if nothing is kept). `unsigned` is removed like any other key
// not on the list.
void RedactEvent(RedactionRules rules, Value* event);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_REDACTION_H_
