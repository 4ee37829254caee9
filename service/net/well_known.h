// The /.well-known/matrix/server response: the delegated server name and how
// long the answer may be cached (server-server API, "Resolving server names",
// step 3). Pure and thread-safe.
#ifndef KEYVERIFIER_SERVICE_NET_WELL_KNOWN_H_
#define KEYVERIFIER_SERVICE_NET_WELL_KNOWN_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/core/server_name.h"

namespace keyverifier::net {

// The largest body accepted; a delegation is a few dozen bytes.
inline constexpr size_t kMaxWellKnownBytes = 64 * 1024;

// `m.server` of a 200 response's body, checked against the server-name
// grammar. InvalidArgumentError says what is wrong (not JSON, not an object,
// no m.server, not a server name).
absl::StatusOr<core::ServerName> ParseWellKnownBody(absl::string_view body);

struct CachePolicy {
  absl::Duration default_ttl = absl::Hours(24);
  absl::Duration max_ttl = absl::Hours(48);
};

// How long a valid response may be cached, from its Cache-Control header
// (absent/empty: the default). `no-store` and `no-cache` mean zero;
// `max-age=N` is N seconds; the result is capped at max_ttl.
absl::Duration WellKnownCacheTime(absl::string_view cache_control,
                                  const CachePolicy& policy);

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_WELL_KNOWN_H_
