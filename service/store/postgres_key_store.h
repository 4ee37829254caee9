// PostgresKeyStore: the KeyStore in a PostgreSQL database, shared by every
// replica of the service.
//
// Create connects (libpq), then migrates the schema under a transaction-level
// advisory lock, so replicas starting together migrate once. Writes to one
// server are serialised across replicas by a per-server advisory lock held
// until commit. Every read is a single statement, so it sees one snapshot.
// A lost connection is re-established before the next statement outside a
// transaction; a write interrupted by it fails as a whole (UnavailableError).
// If the loss hits COMMIT itself the write may have been applied; retrying
// is safe, since storing the same response again changes nothing.
//
// Thread-safe: each call takes one of `connections` connections (more wait
// for one to be free), so one that is slow or reconnecting holds up only its
// own call. The store owns its PGconns. Errors name the database, the step,
// the server's message and its SQLSTATE.
#ifndef KEYVERIFIER_SERVICE_STORE_POSTGRES_KEY_STORE_H_
#define KEYVERIFIER_SERVICE_STORE_POSTGRES_KEY_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/store/key_store.h"

namespace keyverifier::store {

struct PostgresOptions {
  // A libpq connection string or URI, e.g. "host=db port=5432
  // dbname=keyverifier user=keyverifier". Unless it says otherwise,
  // connections give up after 5 s (connect_timeout), detect a dead peer
  // with TCP keepalives within about a minute, and statements are cancelled
  // after 10 s (statement_timeout).
  std::string conninfo;
  // After a failed reconnect, the store fails at once (UNAVAILABLE) instead
  // of trying again before this much time has passed, so that an outage
  // costs each caller nothing rather than one connect timeout each.
  absl::Duration reconnect_interval = absl::Seconds(2);
  // Connections the store keeps (one call uses one at a time), besides the
  // one that listens for other replicas' writes.
  int connections = 4;
};

class PostgresKeyStore {
 public:
  static absl::StatusOr<std::unique_ptr<KeyStore>> Create(
      const PostgresOptions& options);
};

// The advisory lock key that guards migrations (exposed for tests).
inline constexpr int64_t kPostgresMigrationLockKey = 0x6b65797665726966;  // "keyverif"

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_POSTGRES_KEY_STORE_H_
