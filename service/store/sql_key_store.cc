#include "service/store/sql_key_store.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/store/schema.h"

namespace keyverifier::store {
namespace {

using Tx = SqlConnection::Transaction;

absl::Status CellError(const SqlConnection& db, absl::string_view step,
                       size_t column, absl::string_view want) {
  return absl::InternalError(absl::StrCat(db.Describe(), ": ", step,
                                          ": column ", column, " is not ",
                                          want));
}

absl::StatusOr<int64_t> Int(const SqlConnection& db, absl::string_view step,
                            const SqlRow& row, size_t i) {
  if (i >= row.size() || row[i].kind != SqlValue::Kind::kInt) {
    return CellError(db, step, i, "an integer");
  }
  return row[i].int_value;
}

absl::StatusOr<std::optional<int64_t>> OptionalInt(const SqlConnection& db,
                                                   absl::string_view step,
                                                   const SqlRow& row,
                                                   size_t i) {
  if (i < row.size() && row[i].kind == SqlValue::Kind::kNull) {
    return std::optional<int64_t>();
  }
  absl::StatusOr<int64_t> v = Int(db, step, row, i);
  if (!v.ok()) return v.status();
  return std::optional<int64_t>(*v);
}

absl::StatusOr<std::string> Str(const SqlConnection& db,
                                absl::string_view step, const SqlRow& row,
                                size_t i) {
  if (i >= row.size() || (row[i].kind != SqlValue::Kind::kText &&
                          row[i].kind != SqlValue::Kind::kBytes)) {
    return CellError(db, step, i, "a string");
  }
  return row[i].bytes;
}

SqlValue OptionalIntValue(const std::optional<int64_t>& v) {
  return v.has_value() ? SqlValue::Int(*v) : SqlValue::Null();
}

// The usual status propagation (Debian's Abseil has no public macros for
// it). KV_ASSIGN_OR_RETURN expands to several statements: use it only as a
// statement of its own, never as the body of an unbraced if.
#define KV_ASSIGN_OR_RETURN(lhs, expr)       \
  auto KV_CONCAT(_r, __LINE__) = (expr);     \
  if (!KV_CONCAT(_r, __LINE__).ok()) {       \
    return KV_CONCAT(_r, __LINE__).status(); \
  }                                          \
  lhs = *std::move(KV_CONCAT(_r, __LINE__))
#define KV_CONCAT_INNER(a, b) a##b
#define KV_CONCAT(a, b) KV_CONCAT_INNER(a, b)

#define KV_RETURN_IF_ERROR(expr)            \
  do {                                      \
    absl::Status _s = (expr);               \
    if (!_s.ok()) return _s;                \
  } while (0)

}  // namespace

namespace {

// Random hex, different for every store opened.
std::string NewToken() {
  std::random_device random;
  return absl::StrCat(absl::Hex(random(), absl::kZeroPad8), absl::Hex(random(), absl::kZeroPad8));
}

}  // namespace

SqlKeyStore::SqlKeyStore(std::vector<std::unique_ptr<SqlConnection>> connections)
    : connections_(std::move(connections)), token_(NewToken()) {
  for (const auto& c : connections_) idle_.push_back(c.get());
}

SqlKeyStore::Held SqlKeyStore::Take() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::vector<SqlConnection*>* idle) { return !idle->empty(); }, &idle_));
  SqlConnection* c = idle_.back();
  idle_.pop_back();
  return Held(*this, c);
}

void SqlKeyStore::GiveBack(SqlConnection* c) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(c);
}

SqlKeyStore::~SqlKeyStore() { feed_.reset(); }

absl::StatusOr<std::unique_ptr<KeyStore>> SqlKeyStore::Open(
    std::unique_ptr<SqlConnection> connection, std::unique_ptr<ChangeFeed> feed) {
  std::vector<std::unique_ptr<SqlConnection>> connections;
  connections.push_back(std::move(connection));
  return Open(std::move(connections), std::move(feed));
}

absl::StatusOr<std::unique_ptr<KeyStore>> SqlKeyStore::Open(
    std::vector<std::unique_ptr<SqlConnection>> connections, std::unique_ptr<ChangeFeed> feed) {
  if (connections.empty() ||
      std::any_of(connections.begin(), connections.end(), [](const auto& c) { return !c; })) {
    return absl::InvalidArgumentError("SqlKeyStore: no connection");
  }
  std::unique_ptr<SqlKeyStore> store(new SqlKeyStore(std::move(connections)));
  {
    Held db = store->Take();
    KV_RETURN_IF_ERROR(store->Migrate(*db));
  }
  if (feed != nullptr) {
    SqlKeyStore* self = store.get();
    store->feed_ = std::move(feed);
    store->feed_->Start([self](absl::string_view payload) { self->OnAnnounced(payload); });
  }
  return std::unique_ptr<KeyStore>(std::move(store));
}

absl::Status SqlKeyStore::Announce(SqlConnection& db, const std::vector<std::string>& servers) {
  // "TOKEN name name ...", in payloads under the databases' limits.
  constexpr size_t kMaxPayload = 7000;
  std::string payload = token_;
  for (size_t i = 0; i < servers.size(); ++i) {
    absl::StrAppend(&payload, " ", servers[i]);
    if (payload.size() > kMaxPayload || i + 1 == servers.size()) {
      KV_RETURN_IF_ERROR(db.Notify(kChangeChannel, payload));
      payload = token_;
    }
  }
  return absl::OkStatus();
}

void SqlKeyStore::OnAnnounced(absl::string_view payload) {
  std::vector<std::string> parts = absl::StrSplit(payload, ' ', absl::SkipEmpty());
  if (parts.size() < 2 || parts[0] == token_) return;  // ours, or nothing
  parts.erase(parts.begin());
  absl::MutexLock lock(&watchers_mu_);
  for (const auto& [key, changed] : watchers_) changed(parts);
}

void SqlKeyStore::WatchChanges(const void* key, ChangedServers changed) {
  absl::MutexLock lock(&watchers_mu_);
  if (changed) {
    watchers_[key] = std::move(changed);
  } else {
    watchers_.erase(key);
  }
}

absl::Status SqlKeyStore::Migrate(SqlConnection& db) {
  std::vector<Migration> migrations = Migrations(db.BytesType());
  if (migrations.empty() || migrations.back().version != kSchemaVersion) {
    return absl::InternalError(absl::StrCat(
        "key store schema: the last migration is not version ",
        kSchemaVersion));
  }
  SqlTransaction tx(db);
  KV_RETURN_IF_ERROR(tx.Begin(Tx::kMigrate, "schema"));
  KV_RETURN_IF_ERROR(db.Query("create schema_version",
                                SchemaVersionTableStatement(), {})
                         .status());
  KV_ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(db));
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        db.Describe(), ": schema version ", version,
        " is newer than this program's ", kSchemaVersion,
        "; refusing to use it"));
  }
  for (const Migration& m : migrations) {
    if (m.version <= version) continue;
    for (size_t i = 0; i < m.statements.size(); ++i) {
      std::string step = absl::StrCat("migration ", m.version, " (",
                                      m.description, ") statement ", i + 1);
      KV_RETURN_IF_ERROR(db.Query(step, m.statements[i], {}).status());
    }
    KV_RETURN_IF_ERROR(
        db.Query(absl::StrCat("migration ", m.version, ": record version"),
                   "INSERT INTO schema_version (version) VALUES ($1)",
                   {SqlValue::Int(m.version)})
            .status());
  }
  return tx.Commit();
}

absl::StatusOr<int64_t> SqlKeyStore::ReadSchemaVersion(SqlConnection& db) {
  KV_ASSIGN_OR_RETURN(
      std::vector<SqlRow> rows,
      db.Query("read schema_version",
                 "SELECT COALESCE(MAX(version), 0) FROM schema_version", {}));
  if (rows.size() != 1) {
    return absl::InternalError(
        absl::StrCat(db.Describe(), ": read schema_version: no row"));
  }
  return Int(db, "read schema_version", rows[0], 0);
}

absl::StatusOr<int> SqlKeyStore::SchemaVersion() {
  Held held = Take();
  SqlConnection& db = *held;
  KV_ASSIGN_OR_RETURN(int64_t v, ReadSchemaVersion(db));
  return static_cast<int>(v);
}

absl::StatusOr<std::vector<StoredKey>> SqlKeyStore::ReadKeys(SqlConnection& db,
                                                              absl::string_view server) {
  static constexpr absl::string_view kStep = "read verify_keys";
  KV_ASSIGN_OR_RETURN(
      std::vector<SqlRow> rows,
      db.Query(kStep,
                 "SELECT k.key_id, k.public_key, k.valid_until_ts,"
                 " k.expired_ts, k.first_seen_ts, k.last_seen_ts, s.source"
                 " FROM verify_keys k LEFT JOIN verify_key_sources s"
                 " ON s.server_name = k.server_name AND s.key_id = k.key_id"
                 " WHERE k.server_name = $1 ORDER BY k.key_id, s.source",
                 {SqlValue::Text(std::string(server))}));
  std::vector<StoredKey> keys;
  for (const SqlRow& row : rows) {
    KV_ASSIGN_OR_RETURN(std::string key_id, Str(db, kStep, row, 0));
    if (keys.empty() || keys.back().key.key_id != key_id) {
      StoredKey key;
      key.server_name = std::string(server);
      key.key.key_id = key_id;
      KV_ASSIGN_OR_RETURN(std::string pk, Str(db, kStep, row, 1));
      if (pk.size() != key.key.public_key.size()) {
        return absl::DataLossError(absl::StrCat(
            db.Describe(), ": key ", key_id, " of ", server, " has ",
            pk.size(), " bytes of public key, not 32"));
      }
      std::memcpy(key.key.public_key.data(), pk.data(), pk.size());
      KV_ASSIGN_OR_RETURN(key.key.valid_until_ts,
                          OptionalInt(db, kStep, row, 2));
      KV_ASSIGN_OR_RETURN(key.key.expired_ts, OptionalInt(db, kStep, row, 3));
      KV_ASSIGN_OR_RETURN(key.first_seen_ts, Int(db, kStep, row, 4));
      KV_ASSIGN_OR_RETURN(key.last_seen_ts, Int(db, kStep, row, 5));
      keys.push_back(std::move(key));
    }
    if (row.size() > 6 && row[6].kind != SqlValue::Kind::kNull) {
      KV_ASSIGN_OR_RETURN(std::string source, Str(db, kStep, row, 6));
      keys.back().sources.push_back(std::move(source));
    }
  }
  // Sorted here, not by ORDER BY: a database's collation may not be bytewise.
  for (StoredKey& key : keys) std::sort(key.sources.begin(), key.sources.end());
  std::sort(keys.begin(), keys.end(),
            [](const StoredKey& a, const StoredKey& b) {
              return a.key.key_id < b.key.key_id;
            });
  return keys;
}

absl::StatusOr<StoredState> SqlKeyStore::ReadState(SqlConnection& db, const std::string& server,
                                                   absl::string_view source) {
  StoredState state;
  {
    static constexpr absl::string_view kStep = "read servers";
    KV_ASSIGN_OR_RETURN(
        std::vector<SqlRow> rows,
        db.Query(kStep,
                   "SELECT useful_until_ts, last_fetched_ts FROM servers"
                   " WHERE server_name = $1",
                   {SqlValue::Text(server)}));
    if (!rows.empty()) {
      ServerSummary s;
      s.server_name = server;
      KV_ASSIGN_OR_RETURN(s.useful_until_ts, Int(db, kStep, rows[0], 0));
      KV_ASSIGN_OR_RETURN(s.last_fetched_ts, Int(db, kStep, rows[0], 1));
      state.server = s;
    }
  }
  {
    static constexpr absl::string_view kStep = "read responses";
    KV_ASSIGN_OR_RETURN(
        std::vector<SqlRow> rows,
        db.Query(kStep,
                   "SELECT fetched_ts FROM responses"
                   " WHERE server_name = $1 AND source = $2",
                   {SqlValue::Text(server), SqlValue::Text(std::string(source))}));
    if (!rows.empty()) {
      KV_ASSIGN_OR_RETURN(state.response_fetched_ts,
                          Int(db, kStep, rows[0], 0));
    }
  }
  KV_ASSIGN_OR_RETURN(state.keys, ReadKeys(db, server));
  return state;
}

absl::Status SqlKeyStore::WritePlanRows(SqlConnection& db, const WritePlan& plan,
                                        absl::string_view source) {
  const std::string& server = plan.server.server_name;
  KV_RETURN_IF_ERROR(
      db.Query(absl::StrCat("write servers row of ", server),
                 "INSERT INTO servers (server_name, useful_until_ts,"
                 " last_fetched_ts) VALUES ($1, $2, $3)"
                 " ON CONFLICT (server_name) DO UPDATE SET"
                 " useful_until_ts = excluded.useful_until_ts,"
                 " last_fetched_ts = excluded.last_fetched_ts",
                 {SqlValue::Text(server),
                  SqlValue::Int(plan.server.useful_until_ts),
                  SqlValue::Int(plan.server.last_fetched_ts)})
          .status());
  if (plan.result.response_stored) {
    const StoredResponse& r = plan.response;
    KV_RETURN_IF_ERROR(
        db.Query(absl::StrCat("write response of ", server, " from ",
                                r.source),
                   "INSERT INTO responses (server_name, source, fetched_ts,"
                   " valid_until_ts, raw_json) VALUES ($1, $2, $3, $4, $5)"
                   " ON CONFLICT (server_name, source) DO UPDATE SET"
                   " fetched_ts = excluded.fetched_ts,"
                   " valid_until_ts = excluded.valid_until_ts,"
                   " raw_json = excluded.raw_json",
                   {SqlValue::Text(server), SqlValue::Text(r.source),
                    SqlValue::Int(r.fetched_ts),
                    SqlValue::Int(r.valid_until_ts),
                    SqlValue::Bytes(r.raw_json)})
            .status());
  }
  for (const StoredKey& k : plan.keys) {
    const core::VerifyKey& key = k.key;
    std::string step = absl::StrCat("write key ", key.key_id, " of ", server);
    if (std::find(plan.result.rebound_keys.begin(), plan.result.rebound_keys.end(),
                  key.key_id) != plan.result.rebound_keys.end()) {
      // A new binding: the notaries that vouched for the old key did not
      // vouch for this one.
      KV_RETURN_IF_ERROR(
          db.Query(absl::StrCat(step, ": drop the replaced key's sources"),
                     "DELETE FROM verify_key_sources WHERE server_name = $1 AND key_id = $2",
                     {SqlValue::Text(server), SqlValue::Text(key.key_id)})
              .status());
    }
    KV_RETURN_IF_ERROR(
        db.Query(step,
                   "INSERT INTO verify_keys (server_name, key_id, public_key,"
                   " valid_until_ts, expired_ts, first_seen_ts, last_seen_ts)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7)"
                   " ON CONFLICT (server_name, key_id) DO UPDATE SET"
                   " public_key = excluded.public_key,"
                   " valid_until_ts = excluded.valid_until_ts,"
                   " expired_ts = excluded.expired_ts,"
                   " first_seen_ts = excluded.first_seen_ts,"
                   " last_seen_ts = excluded.last_seen_ts",
                   {SqlValue::Text(server), SqlValue::Text(key.key_id),
                    SqlValue::Bytes(std::string(key.public_key.begin(),
                                                key.public_key.end())),
                    OptionalIntValue(key.valid_until_ts),
                    OptionalIntValue(key.expired_ts),
                    SqlValue::Int(k.first_seen_ts),
                    SqlValue::Int(k.last_seen_ts)})
            .status());
    KV_RETURN_IF_ERROR(
        db.Query(absl::StrCat(step, ": source ", source),
                   "INSERT INTO verify_key_sources (server_name, key_id,"
                   " source) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                   {SqlValue::Text(server), SqlValue::Text(key.key_id),
                    SqlValue::Text(std::string(source))})
            .status());
  }
  return absl::OkStatus();
}

absl::StatusOr<WriteResult> SqlKeyStore::StoreResponse(
    const core::ServerKeys& response, absl::string_view source,
    int64_t fetched_ts) {
  // Refuse bad input before touching the database.
  KV_RETURN_IF_ERROR(ValidateWrite(response, source, fetched_ts));
  Held held = Take();
  SqlConnection& db = *held;
  SqlTransaction tx(db);
  KV_RETURN_IF_ERROR(tx.Begin(Tx::kWrite, response.server_name));
  KV_ASSIGN_OR_RETURN(StoredState before,
                      ReadState(db, response.server_name, source));
  KV_ASSIGN_OR_RETURN(WritePlan plan,
                      PlanWrite(before, response, source, fetched_ts));
  KV_RETURN_IF_ERROR(WritePlanRows(db, plan, source));
  KV_RETURN_IF_ERROR(Announce(db, {response.server_name}));
  KV_RETURN_IF_ERROR(tx.Commit());
  return plan.result;
}

std::vector<absl::StatusOr<WriteResult>> SqlKeyStore::StoreResponses(
    const std::vector<ResponseWrite>& writes, int64_t fetched_ts) {
  std::vector<absl::StatusOr<WriteResult>> out(writes.size(),
                                               absl::InternalError("not written"));
  // Refuse bad input before touching the database; the rest in name order,
  // the order their locks are taken in.
  std::vector<size_t> order;
  for (size_t i = 0; i < writes.size(); ++i) {
    absl::Status valid = ValidateWrite(*writes[i].response, writes[i].source, fetched_ts);
    if (valid.ok()) {
      order.push_back(i);
    } else {
      out[i] = valid;
    }
  }
  if (order.empty()) return out;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return writes[a].response->server_name < writes[b].response->server_name;
  });
  auto fail_all = [&](const absl::Status& s) {
    for (size_t i : order) out[i] = s;
    return out;
  };
  Held held = Take();
  SqlConnection& db = *held;
  SqlTransaction tx(db);
  if (absl::Status s = tx.Begin(Tx::kWrite, writes[order[0]].response->server_name); !s.ok()) {
    return fail_all(s);
  }
  std::string locked = writes[order[0]].response->server_name;
  std::vector<std::string> written;
  for (size_t i : order) {
    const core::ServerKeys& response = *writes[i].response;
    if (response.server_name != locked) {
      if (absl::Status s = db.LockAlso(response.server_name); !s.ok()) return fail_all(s);
      locked = response.server_name;
    }
    absl::StatusOr<StoredState> before = ReadState(db, response.server_name, writes[i].source);
    if (!before.ok()) return fail_all(before.status());
    absl::StatusOr<WritePlan> plan = PlanWrite(*before, response, writes[i].source, fetched_ts);
    if (!plan.ok()) {  // the merge rule refuses this one; the others go on
      out[i] = plan.status();
      continue;
    }
    if (absl::Status s = WritePlanRows(db, *plan, writes[i].source); !s.ok()) return fail_all(s);
    out[i] = plan->result;
    written.push_back(response.server_name);
  }
  if (absl::Status s = Announce(db, written); !s.ok()) return fail_all(s);
  if (absl::Status s = tx.Commit(); !s.ok()) {
    for (size_t i : order) {
      if (out[i].ok()) out[i] = s;
    }
  }
  return out;
}

absl::StatusOr<std::vector<StoredKey>> SqlKeyStore::GetKeys(
    absl::string_view server_name) {
  Held held = Take();
  SqlConnection& db = *held;
  return ReadKeys(db, server_name);
}

absl::StatusOr<std::vector<StoredResponse>> SqlKeyStore::GetResponses(
    absl::string_view server_name) {
  static constexpr absl::string_view kStep = "read responses";
  Held held = Take();
  SqlConnection& db = *held;
  KV_ASSIGN_OR_RETURN(
      std::vector<SqlRow> rows,
      db.Query(kStep,
                 "SELECT source, fetched_ts, valid_until_ts, raw_json"
                 " FROM responses WHERE server_name = $1"
                 " ORDER BY fetched_ts DESC, source",
                 {SqlValue::Text(std::string(server_name))}));
  std::vector<StoredResponse> out;
  for (const SqlRow& row : rows) {
    StoredResponse r;
    r.server_name = std::string(server_name);
    KV_ASSIGN_OR_RETURN(r.source, Str(db, kStep, row, 0));
    KV_ASSIGN_OR_RETURN(r.fetched_ts, Int(db, kStep, row, 1));
    KV_ASSIGN_OR_RETURN(r.valid_until_ts, Int(db, kStep, row, 2));
    KV_ASSIGN_OR_RETURN(r.raw_json, Str(db, kStep, row, 3));
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const StoredResponse& a, const StoredResponse& b) {
              return a.fetched_ts != b.fetched_ts ? a.fetched_ts > b.fetched_ts
                                                  : a.source < b.source;
            });
  return out;
}

absl::StatusOr<std::vector<ServerSummary>> SqlKeyStore::ListServers(
    int64_t useful_until_before) {
  static constexpr absl::string_view kStep = "list servers";
  Held held = Take();
  SqlConnection& db = *held;
  KV_ASSIGN_OR_RETURN(
      std::vector<SqlRow> rows,
      db.Query(kStep,
                 "SELECT server_name, useful_until_ts, last_fetched_ts"
                 " FROM servers WHERE useful_until_ts < $1"
                 " ORDER BY useful_until_ts, server_name",
                 {SqlValue::Int(useful_until_before)}));
  std::vector<ServerSummary> out;
  for (const SqlRow& row : rows) {
    ServerSummary s;
    KV_ASSIGN_OR_RETURN(s.server_name, Str(db, kStep, row, 0));
    KV_ASSIGN_OR_RETURN(s.useful_until_ts, Int(db, kStep, row, 1));
    KV_ASSIGN_OR_RETURN(s.last_fetched_ts, Int(db, kStep, row, 2));
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const ServerSummary& a, const ServerSummary& b) {
              return a.useful_until_ts != b.useful_until_ts
                         ? a.useful_until_ts < b.useful_until_ts
                         : a.server_name < b.server_name;
            });
  return out;
}

absl::StatusOr<std::vector<FetchClaim>> SqlKeyStore::ClaimFetches(
    const std::vector<std::string>& servers, absl::string_view holder, int64_t since_ts,
    int64_t now_ts, int64_t until_ts) {
  // In chunks, each one statement that takes the free leases (a lease row
  // another holder's lease no longer covers, and whose last fetch finished
  // before since_ts) and one that reads the others.
  constexpr size_t kChunk = 256;
  // In name order, as every writer takes its locks, so that two claims of
  // overlapping servers cannot deadlock.
  std::vector<std::string> sorted = servers;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  absl::flat_hash_map<std::string, FetchClaim> claims;
  Held held = Take();
  SqlConnection& db = *held;
  for (size_t begin = 0; begin < sorted.size(); begin += kChunk) {
    const size_t end = std::min(sorted.size(), begin + kChunk);
    std::vector<SqlValue> params = {SqlValue::Text(std::string(holder)), SqlValue::Int(until_ts),
                                    SqlValue::Int(now_ts), SqlValue::Int(since_ts)};
    std::string values;
    std::string names;
    for (size_t i = begin; i < end; ++i) {
      params.push_back(SqlValue::Text(sorted[i]));
      const std::string p = absl::StrCat("$", params.size());
      absl::StrAppend(&values, i > begin ? ", " : "", "(", p, ", $1, $2, 0, 0)");
      absl::StrAppend(&names, i > begin ? ", " : "", p);
    }
    KV_ASSIGN_OR_RETURN(
        std::vector<SqlRow> taken,
        db.Query("claim fetch_leases",
                   absl::StrCat("INSERT INTO fetch_leases"
                                " (server_name, holder, expires_ts, done_ts, failed) VALUES ",
                                values,
                                " ON CONFLICT (server_name) DO UPDATE SET"
                                " holder = excluded.holder, expires_ts = excluded.expires_ts"
                                " WHERE fetch_leases.expires_ts < $3"
                                " AND fetch_leases.done_ts < $4"
                                " RETURNING server_name"),
                   params));
    for (const SqlRow& row : taken) claims[row[0].bytes] = FetchClaim::kMine;
    std::vector<SqlValue> read_params(params.begin() + 4, params.end());
    std::string read_names;
    for (size_t i = 0; i < read_params.size(); ++i) {
      absl::StrAppend(&read_names, i > 0 ? ", " : "", "$", i + 1);
    }
    KV_ASSIGN_OR_RETURN(
        std::vector<SqlRow> rows,
        db.Query("read fetch_leases",
                   absl::StrCat("SELECT server_name, done_ts, failed FROM fetch_leases"
                                " WHERE server_name IN (", read_names, ")"),
                   read_params));
    for (const SqlRow& row : rows) {
      if (claims.contains(row[0].bytes)) continue;
      claims[row[0].bytes] = row[1].int_value < since_ts ? FetchClaim::kHeld
                             : row[2].int_value != 0     ? FetchClaim::kFailed
                                                         : FetchClaim::kDone;
    }
  }
  std::vector<FetchClaim> out;
  out.reserve(servers.size());
  for (const std::string& server : servers) {
    auto it = claims.find(server);
    // A row gone between the two statements: nobody holds it now.
    out.push_back(it == claims.end() ? FetchClaim::kHeld : it->second);
  }
  return out;
}

absl::Status SqlKeyStore::ReleaseFetches(const std::vector<std::pair<std::string, bool>>& done,
                                         absl::string_view holder, int64_t now_ts) {
  // One row a statement, so that no release holds a lock a claim waits for
  // while it waits for another (claims lock their rows in name order).
  Held held = Take();
  SqlConnection& db = *held;
  for (const auto& [server, ok] : done) {
    KV_RETURN_IF_ERROR(
        db.Query("release fetch_leases",
                 "UPDATE fetch_leases SET expires_ts = 0, done_ts = $2, failed = $3"
                 " WHERE holder = $1 AND server_name = $4",
                 {SqlValue::Text(std::string(holder)), SqlValue::Int(now_ts),
                  SqlValue::Int(ok ? 0 : 1), SqlValue::Text(server)})
            .status());
  }
  return absl::OkStatus();
}

}  // namespace keyverifier::store
