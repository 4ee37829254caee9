// All of the JSON core in one include: Value (json_value.h), the strict parser
// (json_parser.h), the canonical encoder (canonical_json.h) and the read-in-
// place JsonView (json_view.h). New code includes the header it uses.
#ifndef KEYVERIFIER_SERVICE_CORE_JSON_H_
#define KEYVERIFIER_SERVICE_CORE_JSON_H_

#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/json_view.h"

#endif  // KEYVERIFIER_SERVICE_CORE_JSON_H_
