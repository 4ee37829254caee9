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
  // Takes the connections (at least one), migrates the schema to
  // kSchemaVersion. Each call uses one connection, waiting for one to be
  // free; a connection that reconnects holds up only the call using it.
  // With a `feed`, other processes' writes are reported to WatchChanges.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(
      std::vector<std::unique_ptr<SqlConnection>> connections,
      std::unique_ptr<ChangeFeed> feed = nullptr);
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
  explicit SqlKeyStore(std::vector<std::unique_ptr<SqlConnection>> connections);

  // A connection taken for one call, given back when it ends.
  class Held {
   public:
    Held(SqlKeyStore& store, SqlConnection* c) : store_(store), c_(c) {}
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() { store_.GiveBack(c_); }
    SqlConnection& operator*() const { return *c_; }

   private:
    SqlKeyStore& store_;
    SqlConnection* const c_;
  };
  Held Take();
  void GiveBack(SqlConnection* c);

  // These run on the connection of the call they serve.
  absl::Status Migrate(SqlConnection& db);
  absl::StatusOr<int64_t> ReadSchemaVersion(SqlConnection& db);
  absl::StatusOr<StoredState> ReadState(SqlConnection& db, const std::string& server,
                                        absl::string_view source);
  absl::StatusOr<std::vector<StoredKey>> ReadKeys(SqlConnection& db, absl::string_view server);
  absl::Status WritePlanRows(SqlConnection& db, const WritePlan& plan, absl::string_view source);
  // Announces, inside the write transaction, the servers it wrote.
  absl::Status Announce(SqlConnection& db, const std::vector<std::string>& servers);
  // A payload from the feed: another process's servers, or our own.
  void OnAnnounced(absl::string_view payload);

  const std::vector<std::unique_ptr<SqlConnection>> connections_;
  absl::Mutex mu_;
  std::vector<SqlConnection*> idle_ ABSL_GUARDED_BY(mu_);
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
