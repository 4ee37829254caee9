#include "service/store/sqlite_key_store.h"

#include <sqlite3.h>

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "service/store/sql_connection.h"
#include "service/store/sql_key_store.h"

namespace keyverifier::store {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

class SqliteConnection final : public SqlConnection {
 public:
  static absl::StatusOr<std::unique_ptr<SqlConnection>> Open(
      const SqliteOptions& options) {
    if (options.path.empty()) {
      return absl::InvalidArgumentError("sqlite key store: empty path");
    }
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(options.path.c_str(), &raw,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             nullptr);
    DbPtr db(raw);
    std::string describe = absl::StrCat("sqlite ", options.path);
    if (rc != SQLITE_OK) {
      return absl::UnavailableError(absl::StrCat(
          describe, ": open: ",
          db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), static_cast<int>(absl::ToInt64Milliseconds(
                                       options.busy_timeout)));
    std::unique_ptr<SqliteConnection> conn(
        new SqliteConnection(std::move(db), std::move(describe)));
    absl::StatusOr<std::vector<SqlRow>> mode =
        conn->Query("set journal_mode", "PRAGMA journal_mode = WAL", {});
    if (!mode.ok()) return mode.status();
    if (mode->size() != 1 || (*mode)[0].empty() ||
        absl::AsciiStrToLower((*mode)[0][0].bytes) != "wal") {
      return absl::FailedPreconditionError(absl::StrCat(
          conn->Describe(), ": set journal_mode: WAL was not accepted"));
    }
    for (const char* pragma :
         {"PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"}) {
      absl::Status s = conn->Query(pragma, pragma, {}).status();
      if (!s.ok()) return s;
    }
    return std::unique_ptr<SqlConnection>(std::move(conn));
  }

  const std::string& Describe() const override { return describe_; }
  absl::string_view BytesType() const override { return "BLOB"; }

  absl::Status Begin(Transaction, absl::string_view) override {
    // The database's write lock at once, so the state a write reads cannot
    // change before it commits (and no lock upgrade can fail halfway).
    return Query("begin transaction", "BEGIN IMMEDIATE", {}).status();
  }
  absl::Status Commit() override {
    return Query("commit", "COMMIT", {}).status();
  }
  void Rollback() override {
    if (!sqlite3_get_autocommit(db_.get())) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  absl::StatusOr<std::vector<SqlRow>> Query(
      absl::string_view step, absl::string_view sql,
      absl::Span<const SqlValue> params) override {
    // Statements are prepared once and kept: the store runs the same few
    // statements for every server, and parsing them again cost as much as
    // running them. A statement goes back to the cache reset, so it holds
    // no read snapshot between queries.
    StmtPtr stmt;
    if (auto it = statements_.find(sql); it != statements_.end()) {
      stmt = std::move(it->second);
      statements_.erase(it);
    } else {
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw,
                                  nullptr);
      stmt.reset(raw);
      if (rc != SQLITE_OK) return Error(step, "prepare", rc);
    }
    struct Return {
      ~Return() {
        sqlite3_reset(stmt->get());
        sqlite3_clear_bindings(stmt->get());
        if (cache->size() < kMaxCachedStatements) cache->emplace(std::string(sql), std::move(*stmt));
      }
      StmtPtr* stmt;
      absl::flat_hash_map<std::string, StmtPtr>* cache;
      absl::string_view sql;
    } give_back{&stmt, &statements_, sql};
    int rc = SQLITE_OK;
    for (size_t i = 0; i < params.size(); ++i) {
      std::string name = absl::StrCat("$", i + 1);
      int index = sqlite3_bind_parameter_index(stmt.get(), name.c_str());
      if (index == 0) {
        return absl::InternalError(absl::StrCat(
            describe_, ": ", step, ": statement has no parameter ", name));
      }
      const SqlValue& p = params[i];
      switch (p.kind) {
        case SqlValue::Kind::kNull:
          rc = sqlite3_bind_null(stmt.get(), index);
          break;
        case SqlValue::Kind::kInt:
          rc = sqlite3_bind_int64(stmt.get(), index, p.int_value);
          break;
        case SqlValue::Kind::kText:
          rc = sqlite3_bind_text64(stmt.get(), index, p.bytes.data(),
                                   p.bytes.size(), SQLITE_TRANSIENT,
                                   SQLITE_UTF8);
          break;
        case SqlValue::Kind::kBytes:
          rc = sqlite3_bind_blob64(stmt.get(), index, p.bytes.data(),
                                   p.bytes.size(), SQLITE_TRANSIENT);
          break;
      }
      if (rc != SQLITE_OK) return Error(step, absl::StrCat("bind ", name), rc);
    }
    std::vector<SqlRow> rows;
    while (true) {
      rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error(step, "step", rc);
      SqlRow row;
      int n = sqlite3_column_count(stmt.get());
      for (int c = 0; c < n; ++c) {
        switch (sqlite3_column_type(stmt.get(), c)) {
          case SQLITE_NULL:
            row.push_back(SqlValue::Null());
            break;
          case SQLITE_INTEGER:
            row.push_back(SqlValue::Int(sqlite3_column_int64(stmt.get(), c)));
            break;
          case SQLITE_BLOB: {
            const void* data = sqlite3_column_blob(stmt.get(), c);
            int size = sqlite3_column_bytes(stmt.get(), c);
            row.push_back(SqlValue::Bytes(
                data ? std::string(static_cast<const char*>(data), size)
                     : std::string()));
            break;
          }
          default: {  // text (and floats, which the schema never stores)
            const unsigned char* text = sqlite3_column_text(stmt.get(), c);
            int size = sqlite3_column_bytes(stmt.get(), c);
            row.push_back(SqlValue::Text(
                text ? std::string(reinterpret_cast<const char*>(text), size)
                     : std::string()));
            break;
          }
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

 private:
  SqliteConnection(DbPtr db, std::string describe)
      : db_(std::move(db)), describe_(std::move(describe)) {}

  absl::Status Error(absl::string_view step, absl::string_view what, int rc) {
    std::string message =
        absl::StrCat(describe_, ": ", step, ": ", what, ": ",
                     sqlite3_errmsg(db_.get()), " (code ", rc, ")");
    int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
      return absl::UnavailableError(message);
    }
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
      return absl::DataLossError(message);
    }
    return absl::InternalError(message);
  }

  static constexpr size_t kMaxCachedStatements = 64;

  DbPtr db_;
  std::string describe_;
  // After db_, so destroyed first: statements are finalized before the
  // database closes.
  absl::flat_hash_map<std::string, StmtPtr> statements_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KeyStore>> SqliteKeyStore::Create(
    const SqliteOptions& options) {
  absl::StatusOr<std::unique_ptr<SqlConnection>> conn =
      SqliteConnection::Open(options);
  if (!conn.ok()) return conn.status();
  return SqlKeyStore::Open(*std::move(conn));
}

}  // namespace keyverifier::store
