// The notary side of the key query API (server-server API, "Querying Keys
// Through Another Server"): reading GET /_matrix/key/v2/query/{serverName}
// and POST /_matrix/key/v2/query, deciding when a cached answer is too old
// to serve without asking the origin again, countersigning the origin's own
// response, and the Matrix error bodies.
//
// Pure: no I/O, no clock (times are passed in). Thread-safe. Errors:
// InvalidArgumentError naming the field or server name that was wrong
// (served as M_BAD_JSON / M_INVALID_PARAM), ResourceExhaustedError past a
// limit (M_TOO_LARGE).
#ifndef KEYVERIFIER_SERVICE_NOTARY_PROTOCOL_H_
#define KEYVERIFIER_SERVICE_NOTARY_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/crypto.h"
#include "service/core/server_name.h"
#include "service/store/key_store.h"

namespace keyverifier::notary {

// One server asked about.
struct ServerQuery {
  explicit ServerQuery(core::ServerName name) : server_name(std::move(name)) {}

  core::ServerName server_name;
  // Key ids asked for (answers list every key the server has anyway).
  std::vector<std::string> key_ids;
  // When the keys must still be valid; unset: the notary decides (the
  // cached answer is refreshed past half its lifetime).
  std::optional<int64_t> minimum_valid_until_ts;
};

struct QueryLimits {
  size_t max_servers = 100;      // servers per POST
  size_t max_key_ids = 20;       // key ids per server
};

// POST /_matrix/key/v2/query: {"server_keys": {server: {key_id:
// {"minimum_valid_until_ts": ts}}}}. Several key ids of one server are one
// query whose minimum is the latest they give. An empty server_keys is no
// error (the answer is empty).
absl::StatusOr<std::vector<ServerQuery>> ParseBatchQuery(absl::string_view body,
                                                         const QueryLimits& limits);

// GET /_matrix/key/v2/query/{serverName}[/{keyId}]?minimum_valid_until_ts=N,
// with the path segments already percent-decoded.
absl::StatusOr<ServerQuery> ParseSingleQuery(absl::string_view server_name,
                                             absl::string_view key_id,
                                             std::optional<absl::string_view> minimum);

// The validity the keys must reach for a cached answer to be served as it
// is: the caller's minimum, or else `now_ms` plus the time since `cached`
// was fetched (so an answer past half its lifetime, fetched_ts + (valid_until
// - fetched_ts) / 2, is refreshed). 0 when there is no cached answer (the
// keyring fetches anyway).
int64_t RequiredValidity(const ServerQuery& query, const store::StoredResponse* cached,
                         int64_t now_ms);

// Whether `cached` can be served without asking the origin.
bool Fresh(const ServerQuery& query, const store::StoredResponse& cached, int64_t now_ms);

// The origin's own response among `responses`: the one whose source is the
// server itself (what the notary fetched directly); nullptr if none. A
// notary only vouches for what it saw from the origin.
const store::StoredResponse* OriginResponse(const std::vector<store::StoredResponse>& responses,
                                            absl::string_view server_name);

// The origin's signed response with the notary's signature added (its own
// and earlier signatures kept), as canonical JSON.
absl::StatusOr<std::string> Countersign(absl::string_view raw_json, absl::string_view notary,
                                        absl::string_view key_id,
                                        const core::Ed25519SigningKey& key);

// {"server_keys": [entries...]}; entries are JSON objects already encoded.
std::string QueryResponseBody(const std::vector<std::string>& entries);

// A Matrix error: HTTP status, errcode, human-readable error.
struct MatrixError {
  int http_status = 400;
  std::string errcode;
  std::string error;
};
// The error a failed parse maps to.
MatrixError ErrorOf(const absl::Status& status);
std::string ErrorBody(const MatrixError& error);

// A server's own key response (GET /_matrix/key/v2/server), signed:
// verify_keys {key_id: public key}, no old keys, valid until `valid_until_ts`.
std::string OwnKeyResponse(absl::string_view server_name, absl::string_view key_id,
                           const core::Ed25519SigningKey& key, int64_t valid_until_ts);

}  // namespace keyverifier::notary

#endif  // KEYVERIFIER_SERVICE_NOTARY_PROTOCOL_H_
