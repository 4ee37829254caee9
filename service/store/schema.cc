#include "service/store/schema.h"

#include "absl/strings/str_replace.h"

namespace keyverifier::store {

std::string SchemaVersionTableStatement() {
  return "CREATE TABLE IF NOT EXISTS schema_version ("
         "version INTEGER PRIMARY KEY)";
}

std::vector<Migration> Migrations(absl::string_view bytes_type) {
  std::vector<Migration> migrations = {
      {1,
       "responses, verify_keys, verify_key_sources",
       {
           "CREATE TABLE responses ("
           " server_name TEXT NOT NULL,"
           " source TEXT NOT NULL,"
           " fetched_ts BIGINT NOT NULL,"
           " valid_until_ts BIGINT NOT NULL,"
           " raw_json $BYTES NOT NULL,"
           " PRIMARY KEY (server_name, source))",
           "CREATE TABLE verify_keys ("
           " server_name TEXT NOT NULL,"
           " key_id TEXT NOT NULL,"
           " public_key $BYTES NOT NULL CHECK (length(public_key) = 32),"
           " valid_until_ts BIGINT,"
           " expired_ts BIGINT,"
           " first_seen_ts BIGINT NOT NULL,"
           " last_seen_ts BIGINT NOT NULL,"
           " PRIMARY KEY (server_name, key_id),"
           " CHECK (valid_until_ts IS NOT NULL OR expired_ts IS NOT NULL))",
           "CREATE TABLE verify_key_sources ("
           " server_name TEXT NOT NULL,"
           " key_id TEXT NOT NULL,"
           " source TEXT NOT NULL,"
           " PRIMARY KEY (server_name, key_id, source))",
       }},
      {2,
       "servers (refresh candidates), filled from responses",
       {
           "CREATE TABLE servers ("
           " server_name TEXT PRIMARY KEY,"
           " useful_until_ts BIGINT NOT NULL,"
           " last_fetched_ts BIGINT NOT NULL)",
           "INSERT INTO servers (server_name, useful_until_ts, last_fetched_ts)"
           " SELECT server_name, MAX(valid_until_ts), MAX(fetched_ts)"
           " FROM responses GROUP BY server_name",
           "CREATE INDEX servers_by_useful_until"
           " ON servers (useful_until_ts, server_name)",
       }},
      {3,
       "fetch_leases (one fetch per server across the processes sharing the store)",
       {
           "CREATE TABLE fetch_leases ("
           " server_name TEXT PRIMARY KEY,"
           " holder TEXT NOT NULL,"
           " expires_ts BIGINT NOT NULL,"
           " done_ts BIGINT NOT NULL,"
           " failed INTEGER NOT NULL)",
       }},
  };
  for (Migration& m : migrations) {
    for (std::string& s : m.statements) {
      s = absl::StrReplaceAll(s, {{"$BYTES", bytes_type}});
    }
  }
  return migrations;
}

}  // namespace keyverifier::store
