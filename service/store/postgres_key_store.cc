#include "service/store/postgres_key_store.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "service/store/sql_connection.h"
#include "service/store/sql_key_store.h"

namespace keyverifier::store {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

// Type oids from pg_type.
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kVarcharOid = 1043;
constexpr Oid kVoidOid = 2278;

// Per-server write locks use the two-key advisory lock space, which does
// not overlap the one-key space of the migration lock.
constexpr int32_t kServerLockClass = 0x6b76;  // "kv"

void IgnoreNotice(void*, const char*) {}

int64_t BigEndian(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  // Sign-extend the narrower integer types.
  if (n < 8 && n > 0 && (static_cast<unsigned char>(p[0]) & 0x80)) {
    v |= ~uint64_t{0} << (8 * n);
  }
  return static_cast<int64_t>(v);
}

class PostgresConnection final : public SqlConnection {
 public:
  static absl::StatusOr<std::unique_ptr<SqlConnection>> Open(
      const PostgresOptions& options) {
    // Defaults first: what the caller's string says comes later and wins.
    const char* keywords[] = {"connect_timeout", "keepalives", "keepalives_idle",
                              "keepalives_interval", "keepalives_count", "options",
                              "dbname", nullptr};
    const char* values[] = {"5", "1", "30", "10", "3", "-c statement_timeout=10000",
                            options.conninfo.c_str(), nullptr};
    ConnPtr conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
    if (conn == nullptr) {
      return absl::ResourceExhaustedError(
          "postgres key store: out of memory creating the connection");
    }
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      return absl::UnavailableError(
          absl::StrCat("postgres key store: connect: ",
                       absl::StripTrailingAsciiWhitespace(
                           PQerrorMessage(conn.get()))));
    }
    PQsetNoticeProcessor(conn.get(), IgnoreNotice, nullptr);
    std::string describe =
        absl::StrCat("postgres ", PQdb(conn.get()), " at ", PQhost(conn.get()),
                     ":", PQport(conn.get()));
    return std::unique_ptr<SqlConnection>(new PostgresConnection(
        std::move(conn), std::move(describe), options.reconnect_interval));
  }

  const std::string& Describe() const override { return describe_; }
  absl::string_view BytesType() const override { return "BYTEA"; }

  absl::Status Begin(Transaction kind, absl::string_view lock_name) override {
    if (absl::Status s = Query("begin transaction", "BEGIN", {}).status();
        !s.ok()) {
      return s;
    }
    in_transaction_ = true;
    absl::Status s;
    switch (kind) {
      case Transaction::kWrite:
        s = LockAlso(lock_name);
        break;
      case Transaction::kMigrate:
        s = Query("lock for migration",
                  absl::StrCat("SELECT pg_advisory_xact_lock(",
                               kPostgresMigrationLockKey, ")"),
                  {})
                .status();
        break;
    }
    if (!s.ok()) Rollback();
    return s;
  }

  absl::Status LockAlso(absl::string_view lock_name) override {
    return Query(absl::StrCat("lock server ", lock_name),
                 absl::StrCat("SELECT pg_advisory_xact_lock(", kServerLockClass,
                              ", hashtext($1))"),
                 {SqlValue::Text(std::string(lock_name))})
        .status();
  }

  absl::Status Notify(absl::string_view channel, absl::string_view payload) override {
    return Query("announce the write", "SELECT pg_notify($1, $2)",
                 {SqlValue::Text(std::string(channel)), SqlValue::Text(std::string(payload))})
        .status();
  }

  absl::Status Commit() override {
    absl::Status s = Query("commit", "COMMIT", {}).status();
    in_transaction_ = false;
    return s;
  }

  void Rollback() override {
    in_transaction_ = false;
    if (PQstatus(conn_.get()) == CONNECTION_OK &&
        PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
      ResultPtr(PQexec(conn_.get(), "ROLLBACK"));
    }
  }

  absl::StatusOr<std::vector<SqlRow>> Query(
      absl::string_view step, absl::string_view sql,
      absl::Span<const SqlValue> params) override {
    // A lost connection is re-established only between transactions: inside
    // one, the statements after the loss must not run on their own.
    if (!in_transaction_ && PQstatus(conn_.get()) != CONNECTION_OK) {
      // One attempt per reconnect_interval: between them, fail at once.
      const absl::Time now = absl::Now();
      if (now < next_reconnect_) {
        return absl::UnavailableError(absl::StrCat(
            describe_, ": ", step, ": the database is unreachable (", last_reconnect_error_,
            "); trying again after ", absl::FormatTime(next_reconnect_)));
      }
      PQreset(conn_.get());
      if (PQstatus(conn_.get()) != CONNECTION_OK) {
        last_reconnect_error_ =
            std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_.get())));
        next_reconnect_ = absl::Now() + reconnect_interval_;
        return absl::UnavailableError(
            absl::StrCat(describe_, ": ", step, ": reconnect: ", last_reconnect_error_));
      }
      next_reconnect_ = absl::InfinitePast();
      PQsetNoticeProcessor(conn_.get(), IgnoreNotice, nullptr);
    }
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size());
    std::vector<int> lengths(params.size());
    std::vector<int> formats(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& p = params[i];
      switch (p.kind) {
        case SqlValue::Kind::kNull:
          values[i] = nullptr;
          break;
        case SqlValue::Kind::kInt:
          text[i] = absl::StrCat(p.int_value);
          values[i] = text[i].c_str();
          break;
        case SqlValue::Kind::kText:
          if (p.bytes.find('\0') != std::string::npos) {
            return absl::InvalidArgumentError(
                absl::StrCat(describe_, ": ", step, ": parameter $", i + 1,
                             " contains a NUL byte"));
          }
          values[i] = p.bytes.c_str();
          break;
        case SqlValue::Kind::kBytes:
          values[i] = p.bytes.data();
          lengths[i] = static_cast<int>(p.bytes.size());
          formats[i] = 1;
          break;
      }
    }
    std::string statement(sql);
    ResultPtr res(PQexecParams(conn_.get(), statement.c_str(),
                               static_cast<int>(params.size()), nullptr,
                               values.data(), lengths.data(), formats.data(),
                               /*resultFormat=*/1));
    ExecStatusType status =
        res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return Error(step, res.get());
    }
    std::vector<SqlRow> rows;
    int n_rows = PQntuples(res.get());
    int n_cols = PQnfields(res.get());
    for (int r = 0; r < n_rows; ++r) {
      SqlRow row;
      for (int c = 0; c < n_cols; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          row.push_back(SqlValue::Null());
          continue;
        }
        const char* data = PQgetvalue(res.get(), r, c);
        int len = PQgetlength(res.get(), r, c);
        Oid type = PQftype(res.get(), c);
        switch (type) {
          case kInt8Oid:
          case kInt4Oid:
          case kInt2Oid:
          case kBoolOid:
            if (len < 1 || len > 8) {
              return absl::InternalError(
                  absl::StrCat(describe_, ": ", step, ": column ", c,
                               " has an integer of ", len, " bytes"));
            }
            row.push_back(SqlValue::Int(BigEndian(data, len)));
            break;
          case kByteaOid:
            row.push_back(SqlValue::Bytes(std::string(data, len)));
            break;
          case kTextOid:
          case kVarcharOid:
            row.push_back(SqlValue::Text(std::string(data, len)));
            break;
          case kVoidOid:
            row.push_back(SqlValue::Null());
            break;
          default:
            return absl::InternalError(
                absl::StrCat(describe_, ": ", step, ": column ", c,
                             " has unexpected type oid ", type));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

 private:
  PostgresConnection(ConnPtr conn, std::string describe, absl::Duration reconnect_interval)
      : conn_(std::move(conn)), describe_(std::move(describe)),
        reconnect_interval_(reconnect_interval) {}

  absl::Status Error(absl::string_view step, const PGresult* res) {
    const char* sqlstate =
        res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string state = sqlstate ? sqlstate : "";
    absl::string_view message = absl::StripTrailingAsciiWhitespace(
        res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                          : PQerrorMessage(conn_.get()));
    std::string text = absl::StrCat(describe_, ": ", step, ": ", message,
                                    state.empty() ? "" : " (SQLSTATE ", state,
                                    state.empty() ? "" : ")");
    if (PQstatus(conn_.get()) != CONNECTION_OK ||
        absl::StartsWith(state, "08") || state == "57P01") {
      return absl::UnavailableError(text);
    }
    if (state == "40001" || state == "40P01") return absl::AbortedError(text);
    return absl::InternalError(text);
  }

  ConnPtr conn_;
  std::string describe_;
  const absl::Duration reconnect_interval_;
  absl::Time next_reconnect_ = absl::InfinitePast();
  std::string last_reconnect_error_;
  bool in_transaction_ = false;
};

// LISTEN on a connection of its own, on a thread of its own: poll() on the
// connection's socket and on an eventfd that Stop (the destructor) signals.
// A lost connection is made again after the reconnect interval; what was
// announced meanwhile is missed (readers fall back to the store on a miss).
class PostgresChangeFeed final : public ChangeFeed {
 public:
  explicit PostgresChangeFeed(PostgresOptions options)
      : options_(std::move(options)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~PostgresChangeFeed() override {
    stopping_.store(true);
    const uint64_t one = 1;
    if (wake_ >= 0) (void)!write(wake_, &one, sizeof(one));
    if (thread_.joinable()) thread_.join();
    if (wake_ >= 0) close(wake_);
  }

  void Start(std::function<void(absl::string_view)> deliver) override {
    deliver_ = std::move(deliver);
    thread_ = std::thread([this] { Run(); });
  }

 private:
  ConnPtr Connect() {
    const char* keywords[] = {"connect_timeout", "keepalives", "keepalives_idle",
                              "keepalives_interval", "keepalives_count", "dbname", nullptr};
    const char* values[] = {"5", "1", "30", "10", "3", options_.conninfo.c_str(), nullptr};
    ConnPtr conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
    if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) return nullptr;
    PQsetNoticeProcessor(conn.get(), IgnoreNotice, nullptr);
    ResultPtr r(PQexec(conn.get(), absl::StrCat("LISTEN ", kChangeChannel).c_str()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return nullptr;
    return conn;
  }

  // Waits up to `timeout` for the socket (or -1: none) or the wake-up.
  void Wait(int fd, absl::Duration timeout) {
    pollfd fds[2] = {{wake_, POLLIN, 0}, {fd, POLLIN, 0}};
    (void)poll(fds, fd >= 0 ? 2 : 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  }

  void Run() {
    ConnPtr conn;
    while (!stopping_.load()) {
      if (conn == nullptr) {
        conn = Connect();
        if (conn == nullptr) {
          Wait(-1, options_.reconnect_interval);
          continue;
        }
      }
      Wait(PQsocket(conn.get()), absl::Seconds(30));
      if (stopping_.load()) break;
      if (PQconsumeInput(conn.get()) != 1 || PQstatus(conn.get()) != CONNECTION_OK) {
        conn.reset();
        continue;
      }
      while (PGnotify* n = PQnotifies(conn.get())) {
        deliver_(n->extra != nullptr ? absl::string_view(n->extra) : absl::string_view());
        PQfreemem(n);
      }
    }
  }

  const PostgresOptions options_;
  const int wake_;
  std::atomic<bool> stopping_{false};
  std::function<void(absl::string_view)> deliver_;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KeyStore>> PostgresKeyStore::Create(
    const PostgresOptions& options) {
  std::vector<std::unique_ptr<SqlConnection>> connections;
  for (int i = 0; i < std::max(1, options.connections); ++i) {
    absl::StatusOr<std::unique_ptr<SqlConnection>> conn = PostgresConnection::Open(options);
    if (!conn.ok()) return conn.status();
    connections.push_back(*std::move(conn));
  }
  return SqlKeyStore::Open(std::move(connections),
                           std::make_unique<PostgresChangeFeed>(options));
}

}  // namespace keyverifier::store
