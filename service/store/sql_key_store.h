// SqlKeyStore: the KeyStore over a SQL database (SQLite or PostgreSQL,
// through SqlConnection). Open migrates the schema (schema.h); every write
// reads the server's state, applies the merge rule (merge.h) and writes the
// plan in one transaction, serialised per server across every connection to
// the database, so several processes or replicas may share it.
//
// Thread-safe: calls are serialised on the one connection it owns.
// Use SqliteKeyStore::Create or PostgresKeyStore::Create rather than Open.
#ifndef KEYVERIFIER_SERVICE_STORE_SQL_KEY_STORE_H_
#define KEYVERIFIER_SERVICE_STORE_SQL_KEY_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "service/store/key_store.h"
#include "service/store/merge.h"
#include "service/store/sql_connection.h"

namespace keyverifier::store {

class SqlKeyStore final : public KeyStore {
 public:
  // Takes the connection, migrates its schema to kSchemaVersion.
  // With a `feed`, other processes' writes are reported to WatchChanges.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(
      std::unique_ptr<SqlConnection> connection, std::unique_ptr<ChangeFeed> feed = nullptr);
  ~SqlKeyStore() override;

  absl::StatusOr<WriteResult> StoreResponse(const core::ServerKeys& response,
                                            absl::string_view source,
                                            int64_t fetched_ts) override;
  std::vector<absl::StatusOr<WriteResult>> StoreResponses(
      const std::vector<ResponseWrite>& writes, int64_t fetched_ts) override;
  absl::StatusOr<std::vector<StoredKey>> GetKeys(
      absl::string_view server_name) override;
  absl::StatusOr<std::vector<StoredResponse>> GetResponses(
      absl::string_view server_name) override;
  absl::StatusOr<std::vector<ServerSummary>> ListServers(
      int64_t useful_until_before) override;
  absl::StatusOr<int> SchemaVersion() override;
  absl::StatusOr<std::vector<FetchClaim>> ClaimFetches(const std::vector<std::string>& servers,
                                                       absl::string_view holder, int64_t since_ts,
                                                       int64_t now_ts, int64_t until_ts) override;
  absl::Status ReleaseFetches(const std::vector<std::pair<std::string, bool>>& done,
                              absl::string_view holder, int64_t now_ts) override;
  void WatchChanges(const void* key, ChangedServers changed) override;

 private:
  explicit SqlKeyStore(std::unique_ptr<SqlConnection> connection);

  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> ReadSchemaVersion() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<StoredState> ReadState(const std::string& server,
                                        absl::string_view source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<StoredKey>> ReadKeys(absl::string_view server)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WritePlanRows(const WritePlan& plan, absl::string_view source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Announces, inside the write transaction, the servers it wrote.
  absl::Status AnnounceLocked(const std::vector<std::string>& servers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A payload from the feed: another process's servers, or our own.
  void OnAnnounced(absl::string_view payload);

  absl::Mutex mu_;
  std::unique_ptr<SqlConnection> db_ ABSL_GUARDED_BY(mu_);
  // This store's writes carry it, so that the feed can tell them apart.
  const std::string token_;
  absl::Mutex watchers_mu_;
  absl::flat_hash_map<const void*, ChangedServers> watchers_ ABSL_GUARDED_BY(watchers_mu_);
  std::unique_ptr<ChangeFeed> feed_;  // last: stopped first
};

// The channel writes are announced on.
inline constexpr char kChangeChannel[] = "keyverifier_keys";

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_SQL_KEY_STORE_H_
