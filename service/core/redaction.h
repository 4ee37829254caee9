// The redaction algorithm of each room version (client-server API
// "Redactions", as referenced by the room version specs): which top-level keys
// survive, and which keys of `content` survive for which event types.
//
// Pure and thread-safe. Redacting never fails: whatever is not an object where
// an object is expected is simply dropped, as the reference implementations do.
#ifndef KEYVERIFIER_SERVICE_CORE_REDACTION_H_
#define KEYVERIFIER_SERVICE_CORE_REDACTION_H_

#include "service/core/json.h"
#include "service/core/room_version.h"

namespace keyverifier::core {

// Redacts `event` (an object) in place. The result always has a `content`
// object (empty if nothing is kept). `unsigned` is removed like any other key
// not on the list.
void RedactEvent(RedactionRules rules, Value* event);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_REDACTION_H_
