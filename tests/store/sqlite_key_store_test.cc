#include "service/store/sqlite_key_store.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/store/schema.h"
#include "tests/store/key_store_conformance.h"
#include "tests/store/sqlite_test_util.h"

namespace keyverifier::store::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SqliteFactory {
 public:
  static constexpr bool kPersistent = true;
  static constexpr bool kShared = true;
  SqliteFactory() : path_(NewDatabasePath("conformance")) {}

  absl::StatusOr<std::unique_ptr<KeyStore>> Open() {
    return SqliteKeyStore::Create({path_});
  }

  absl::Status FailWritesOfKey(const std::string& key_id) {
    absl::StatusOr<RawSqlite> db = RawSqlite::Open(path_);
    if (!db.ok()) return db.status();
    for (const char* when : {"INSERT", "UPDATE"}) {
      absl::Status s = db->Exec(absl::StrCat(
          "CREATE TRIGGER fail_", when, " BEFORE ", when,
          " ON verify_keys WHEN NEW.key_id = '", key_id,
          "' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  std::string path_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, KeyStoreConformance, SqliteFactory);

TEST(SqliteKeyStoreTest, UsesWriteAheadLog) {
  std::string path = NewDatabasePath("wal");
  absl::StatusOr<std::unique_ptr<KeyStore>> store =
      SqliteKeyStore::Create({path});
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<RawSqlite> db = RawSqlite::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_THAT(db->Column("PRAGMA journal_mode"), ElementsAre("wal"));
}

TEST(SqliteKeyStoreTest, MissingDirectoryIsAPreciseError) {
  std::string path = NewDatabasePath("no-such-dir/sub");
  absl::StatusOr<std::unique_ptr<KeyStore>> store =
      SqliteKeyStore::Create({path});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_THAT(store.status().message(), HasSubstr("open"));
}

TEST(SqliteKeyStoreTest, EmptyPathIsRefused) {
  absl::StatusOr<std::unique_ptr<KeyStore>> store = SqliteKeyStore::Create({});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SqliteKeyStoreTest, MigratesAVersion1File) {
  std::string path = NewDatabasePath("v1");
  {
    absl::StatusOr<RawSqlite> db = RawSqlite::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(db->Exec(SchemaVersionTableStatement()).ok());
    std::vector<Migration> migrations = Migrations("BLOB");
    for (const std::string& s : migrations[0].statements) {
      ASSERT_TRUE(db->Exec(s).ok()) << s;
    }
    ASSERT_TRUE(db->Exec("INSERT INTO schema_version VALUES (1)").ok());
    ASSERT_TRUE(db->Exec("INSERT INTO responses VALUES"
                         " ('a.example', 'a.example', 10, 500, x'7b7d'),"
                         " ('a.example', 'n.example', 20, 700, x'7b7d'),"
                         " ('b.example', 'b.example', 30, 300, x'7b7d')")
                    .ok());
  }
  absl::StatusOr<std::unique_ptr<KeyStore>> store =
      SqliteKeyStore::Create({path});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion().value_or(-1), kSchemaVersion);
  // Version 2's servers table was filled from the stored responses.
  absl::StatusOr<std::vector<ServerSummary>> servers = (*store)->ListServers();
  ASSERT_TRUE(servers.ok()) << servers.status();
  EXPECT_THAT(*servers, ElementsAre(ServerSummary{"b.example", 300, 30},
                                    ServerSummary{"a.example", 700, 20}));
  absl::StatusOr<RawSqlite> db = RawSqlite::Open(path);
  ASSERT_TRUE(db.ok());
  EXPECT_THAT(db->Column("SELECT version FROM schema_version ORDER BY 1"),
              ElementsAre("1", "2", "3"));
}

TEST(SqliteKeyStoreTest, RefusesASchemaFromANewerVersion) {
  std::string path = NewDatabasePath("newer");
  ASSERT_TRUE(SqliteKeyStore::Create({path}).ok());
  {
    absl::StatusOr<RawSqlite> db = RawSqlite::Open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec("INSERT INTO schema_version VALUES (99)").ok());
  }
  absl::StatusOr<std::unique_ptr<KeyStore>> store =
      SqliteKeyStore::Create({path});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
}

TEST(SqliteKeyStoreTest, NotADatabaseIsDataLoss) {
  std::string path = NewDatabasePath("garbage");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("this is not a database file, just some text long enough to matter "
        "for the header check of sqlite which reads the first 100 bytes",
        f);
  fclose(f);
  absl::StatusOr<std::unique_ptr<KeyStore>> store =
      SqliteKeyStore::Create({path});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss)
      << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr(path));
}

// Two stores on one file, as two processes would use it: writes wait for
// each other's write lock and every merge sees the other's commits. Every
// write adds a key of its own, so the k-th write in commit order reports k
// vanished keys; two writes merged into the same stored state would report
// the same count.
TEST(SqliteKeyStoreTest, TwoStoresShareAFile) {
  std::string path = NewDatabasePath("shared");
  absl::StatusOr<std::unique_ptr<KeyStore>> one = SqliteKeyStore::Create({path});
  absl::StatusOr<std::unique_ptr<KeyStore>> two = SqliteKeyStore::Create({path});
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(two.ok()) << two.status();
  constexpr int kWrites = 20;
  struct Log {
    absl::Status error;
    std::vector<size_t> vanished;
  };
  // One writer's validity rises, the other's falls: a merge that missed the
  // other store's commit would lower valid_until_ts below the maximum.
  auto writer = [](KeyStore* store, std::string source, std::string prefix,
                   int sign, Log* log) {
    for (int i = 0; i < kWrites; ++i) {
      absl::StatusOr<WriteResult> r = store->StoreResponse(
          SignedResponse(kOrigin, 2000 + sign * i,
                         {{"ed25519:a", 'a'},
                          {absl::StrCat("ed25519:", prefix, i), 'k'}}),
          source, 100 + i);
      if (!r.ok()) {
        log->error = r.status();
        return;
      }
      log->vanished.push_back(r->vanished_keys.size());
    }
  };
  Log l1, l2;
  std::thread t1(writer, one->get(), kNotaryA, "one", +1, &l1);
  std::thread t2(writer, two->get(), kNotaryB, "two", -1, &l2);
  t1.join();
  t2.join();
  ASSERT_TRUE(l1.error.ok()) << l1.error;
  ASSERT_TRUE(l2.error.ok()) << l2.error;
  std::vector<size_t> counts = l1.vanished;
  counts.insert(counts.end(), l2.vanished.begin(), l2.vanished.end());
  std::sort(counts.begin(), counts.end());
  std::vector<size_t> expected(2 * kWrites);
  for (size_t k = 0; k < expected.size(); ++k) expected[k] = k;
  EXPECT_EQ(counts, expected);

  absl::StatusOr<std::vector<StoredKey>> keys = (*one)->GetKeys(kOrigin);
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), size_t{2 * kWrites + 1});
  const StoredKey* a = FindKey(*keys, "ed25519:a");
  ASSERT_NE(a, nullptr);
  EXPECT_THAT(a->sources, ElementsAre(kNotaryA, kNotaryB));
  EXPECT_EQ(a->key.valid_until_ts, 2000 + kWrites - 1);
  EXPECT_EQ(a->first_seen_ts, 100);
  EXPECT_EQ(a->last_seen_ts, 100 + kWrites - 1);
}

}  // namespace
}  // namespace keyverifier::store::testing
