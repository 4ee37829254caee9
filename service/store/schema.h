// The key store's SQL schema and its migrations, one list for SQLite and
// PostgreSQL: the statements differ only in the byte-string column type.
//
//   schema_version      one row per applied migration
//   servers             per server: useful_until_ts, last_fetched_ts  (v2)
//   responses           per (server, source): the latest signed response
//   verify_keys         per (server, key id): public key and validity
//   verify_key_sources  per (server, key id, source)
//
// Migrations run in one transaction at Create (SqlKeyStore::Open); a store
// whose schema_version is newer than kSchemaVersion is refused. Pure.
#ifndef KEYVERIFIER_SERVICE_STORE_SCHEMA_H_
#define KEYVERIFIER_SERVICE_STORE_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace keyverifier::store {

struct Migration {
  int version = 0;
  std::string description;
  std::vector<std::string> statements;
};

// Creates schema_version if it is missing; run before reading the version.
std::string SchemaVersionTableStatement();

// Migrations 1..kSchemaVersion, in order, for a database whose byte-string
// column type is `bytes_type`.
std::vector<Migration> Migrations(absl::string_view bytes_type);

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_SCHEMA_H_
