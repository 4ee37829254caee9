// SqlConnection: the little a SQL key store needs from a database
// connection, so that one SqlKeyStore serves both SQLite and PostgreSQL.
// Statements are written once, with $1..$n placeholders, in the SQL both
// databases accept (ON CONFLICT upserts, excluded.*).
//
// Not thread-safe: the owner (SqlKeyStore) serialises calls. Errors carry
// the step name passed in, the database's message and, where there is one,
// its error code; lost connections and busy databases are UnavailableError.
#ifndef KEYVERIFIER_SERVICE_STORE_SQL_CONNECTION_H_
#define KEYVERIFIER_SERVICE_STORE_SQL_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace keyverifier::store {

struct SqlValue {
  enum class Kind { kNull, kInt, kText, kBytes };
  Kind kind = Kind::kNull;
  int64_t int_value = 0;
  std::string bytes;  // kText and kBytes

  static SqlValue Null() { return SqlValue(); }
  static SqlValue Int(int64_t v) {
    SqlValue s;
    s.kind = Kind::kInt;
    s.int_value = v;
    return s;
  }
  static SqlValue Text(std::string v) {
    SqlValue s;
    s.kind = Kind::kText;
    s.bytes = std::move(v);
    return s;
  }
  static SqlValue Bytes(std::string v) {
    SqlValue s;
    s.kind = Kind::kBytes;
    s.bytes = std::move(v);
    return s;
  }
};

using SqlRow = std::vector<SqlValue>;

class SqlConnection {
 public:
  // Reads are single statements, each its own snapshot, and need none.
  enum class Transaction {
    kWrite,    // a write; `lock_name` names what it modifies
    kMigrate,  // schema migration: excludes every other migration
  };

  virtual ~SqlConnection() = default;

  // For error messages: which database this is.
  virtual const std::string& Describe() const = 0;
  // The column type of byte strings ("BLOB", "BYTEA").
  virtual absl::string_view BytesType() const = 0;

  // Starts a transaction. Writers with the same `lock_name`, and
  // migrations, are serialised until Commit/Rollback, also across processes
  // sharing the database.
  virtual absl::Status Begin(Transaction kind, absl::string_view lock_name) = 0;
  // Inside a write transaction: serialises writers of `lock_name` too
  // (batch writes lock each server, in name order). The default does
  // nothing, for databases whose transactions exclude every other writer.
  virtual absl::Status LockAlso(absl::string_view lock_name) { return absl::OkStatus(); }
  virtual absl::Status Commit() = 0;
  // Best effort; a failed rollback leaves the connection to be reset.
  virtual void Rollback() = 0;

  // Inside a write transaction: tells the processes listening on `channel`,
  // when the transaction commits. Databases without that do nothing.
  virtual absl::Status Notify(absl::string_view channel, absl::string_view payload) {
    return absl::OkStatus();
  }

  // Runs one statement; returns its rows (none for statements without).
  virtual absl::StatusOr<std::vector<SqlRow>> Query(
      absl::string_view step, absl::string_view sql,
      absl::Span<const SqlValue> params) = 0;
};

// What other processes sharing the database announced with Notify on a
// channel (PostgreSQL: LISTEN on a connection of its own). Delivers each
// payload on a thread of its own, from Start until it is destroyed.
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  virtual void Start(std::function<void(absl::string_view payload)> deliver) = 0;
};

// A transaction on `db` that is rolled back unless committed, so that every
// early return undoes the write. A COMMIT that fails counts as not committed:
// the database may have left the transaction open, and a transaction left
// open would make every later Begin fail and hold the write lock.
class SqlTransaction {
 public:
  explicit SqlTransaction(SqlConnection& db) : db_(db) {}
  SqlTransaction(const SqlTransaction&) = delete;
  SqlTransaction& operator=(const SqlTransaction&) = delete;
  ~SqlTransaction() {
    if (open_) db_.Rollback();
  }
  absl::Status Begin(SqlConnection::Transaction kind, absl::string_view lock_name) {
    absl::Status s = db_.Begin(kind, lock_name);
    open_ = s.ok();
    return s;
  }
  absl::Status Commit() {
    absl::Status s = db_.Commit();
    if (s.ok()) open_ = false;
    return s;
  }

 private:
  SqlConnection& db_;
  bool open_ = false;
};

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_SQL_CONNECTION_H_
