// SqlTransaction: rolled back unless a COMMIT succeeded.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "service/store/sql_connection.h"

namespace keyverifier::store {
namespace {

// Records the calls; Begin and Commit fail when told to.
class RecordingConnection : public SqlConnection {
 public:
  const std::string& Describe() const override { return name_; }
  absl::string_view BytesType() const override { return "BLOB"; }
  absl::Status Begin(Transaction, absl::string_view) override {
    calls.push_back("begin");
    return begin_fails ? absl::UnavailableError("busy") : absl::OkStatus();
  }
  absl::Status Commit() override {
    calls.push_back("commit");
    return commit_fails ? absl::InternalError("disk I/O error") : absl::OkStatus();
  }
  void Rollback() override { calls.push_back("rollback"); }
  absl::StatusOr<std::vector<SqlRow>> Query(absl::string_view, absl::string_view,
                                            absl::Span<const SqlValue>) override {
    return std::vector<SqlRow>{};
  }

  bool begin_fails = false;
  bool commit_fails = false;
  std::vector<std::string> calls;

 private:
  std::string name_ = "recording";
};

using Calls = std::vector<std::string>;

TEST(SqlTransactionTest, CommittedIsNotRolledBack) {
  RecordingConnection db;
  {
    SqlTransaction tx(db);
    ASSERT_TRUE(tx.Begin(SqlConnection::Transaction::kWrite, "a.test").ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  EXPECT_EQ(db.calls, (Calls{"begin", "commit"}));
}

TEST(SqlTransactionTest, LeftWithoutCommitIsRolledBack) {
  RecordingConnection db;
  {
    SqlTransaction tx(db);
    ASSERT_TRUE(tx.Begin(SqlConnection::Transaction::kWrite, "a.test").ok());
  }
  EXPECT_EQ(db.calls, (Calls{"begin", "rollback"}));
}

TEST(SqlTransactionTest, FailedCommitIsRolledBack) {
  RecordingConnection db;
  db.commit_fails = true;
  {
    SqlTransaction tx(db);
    ASSERT_TRUE(tx.Begin(SqlConnection::Transaction::kWrite, "a.test").ok());
    absl::Status s = tx.Commit();
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
    EXPECT_EQ(s.message(), "disk I/O error");
  }
  EXPECT_EQ(db.calls, (Calls{"begin", "commit", "rollback"}));
}

TEST(SqlTransactionTest, FailedBeginIsNotRolledBack) {
  RecordingConnection db;
  db.begin_fails = true;
  {
    SqlTransaction tx(db);
    EXPECT_EQ(tx.Begin(SqlConnection::Transaction::kMigrate, "schema").code(),
              absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(db.calls, (Calls{"begin"}));
}

}  // namespace
}  // namespace keyverifier::store
