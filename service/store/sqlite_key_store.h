// SqliteKeyStore: the embedded KeyStore, one SQLite file (by default
// kSqliteFileName in the service's data_dir).
//
// Durability: WAL journal with synchronous=FULL, so a write whose
// StoreResponse returned OK survives the process being killed (and the
// machine losing power). Several processes may open the same file: writes
// take SQLite's write lock (BEGIN IMMEDIATE) and wait up to busy_timeout.
//
// Thread-safe (calls are serialised on one connection). The store owns its
// sqlite3 handle. Errors name the file, the step and SQLite's message and
// extended code; SQLITE_BUSY is UnavailableError.
#ifndef KEYVERIFIER_SERVICE_STORE_SQLITE_KEY_STORE_H_
#define KEYVERIFIER_SERVICE_STORE_SQLITE_KEY_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/store/key_store.h"

namespace keyverifier::store {

inline constexpr char kSqliteFileName[] = "keys.sqlite3";

struct SqliteOptions {
  std::string path;  // created if missing; its directory must exist
  // How long a write waits for another process holding the write lock.
  absl::Duration busy_timeout = absl::Seconds(5);
};

class SqliteKeyStore {
 public:
  // Opens (creating if needed) the file, sets WAL and synchronous=FULL,
  // migrates the schema.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Create(
      const SqliteOptions& options);
};

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_SQLITE_KEY_STORE_H_
