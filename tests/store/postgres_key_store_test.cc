// The PostgreSQL key store against a real server, started once for this
// test binary (PostgresEnvironment); every test gets its own database.
#include "service/store/postgres_key_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/store/schema.h"
#include "tests/store/key_store_conformance.h"
#include "tests/store/postgres_server.h"

namespace keyverifier::store::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

PostgresServer* g_server = nullptr;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server =
        PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    g_server = server_.get();
  }
  void TearDown() override {
    g_server = nullptr;
    server_.reset();
  }

 private:
  std::unique_ptr<PostgresServer> server_;
};

// A fresh database on the shared server.
std::string NewDatabase() {
  if (g_server == nullptr) {
    ADD_FAILURE() << "no PostgreSQL server";
    return "";
  }
  absl::StatusOr<std::string> db = g_server->CreateDatabase();
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *db : "";
}

absl::StatusOr<std::unique_ptr<KeyStore>> OpenStore(const std::string& db) {
  if (g_server == nullptr) return absl::FailedPreconditionError("no server");
  return PostgresKeyStore::Create({g_server->ConnInfo(db)});
}

class PostgresFactory {
 public:
  static constexpr bool kPersistent = true;
  static constexpr bool kShared = true;
  PostgresFactory() : db_(NewDatabase()) {}

  absl::StatusOr<std::unique_ptr<KeyStore>> Open() { return OpenStore(db_); }

  absl::Status FailWritesOfKey(const std::string& key_id) {
    return g_server->Exec(
        db_, absl::StrCat(
                 "CREATE FUNCTION fail_key() RETURNS trigger LANGUAGE plpgsql"
                 " AS $$ BEGIN IF NEW.key_id = '",
                 key_id,
                 "' THEN RAISE EXCEPTION 'injected failure'; END IF;"
                 " RETURN NEW; END $$;"
                 " CREATE TRIGGER fail_key BEFORE INSERT OR UPDATE ON"
                 " verify_keys FOR EACH ROW EXECUTE FUNCTION fail_key()"));
  }

 private:
  std::string db_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, KeyStoreConformance, PostgresFactory);

TEST(PostgresKeyStoreTest, MigratesAVersion1Database) {
  std::string db = NewDatabase();
  std::vector<Migration> migrations = Migrations("BYTEA");
  std::string v1 = SchemaVersionTableStatement() + ";";
  for (const std::string& s : migrations[0].statements) v1 += s + ";";
  v1 +=
      "INSERT INTO schema_version VALUES (1);"
      "INSERT INTO responses VALUES"
      " ('a.example', 'a.example', 10, 500, '\\x7b7d'),"
      " ('a.example', 'n.example', 20, 700, '\\x7b7d'),"
      " ('b.example', 'b.example', 30, 300, '\\x7b7d')";
  ASSERT_TRUE(g_server->Exec(db, v1).ok());

  absl::StatusOr<std::unique_ptr<KeyStore>> store = OpenStore(db);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion().value_or(-1), kSchemaVersion);
  absl::StatusOr<std::vector<ServerSummary>> servers = (*store)->ListServers();
  ASSERT_TRUE(servers.ok()) << servers.status();
  EXPECT_THAT(*servers, ElementsAre(ServerSummary{"b.example", 300, 30},
                                    ServerSummary{"a.example", 700, 20}));
  EXPECT_THAT(
      g_server->Column(db, "SELECT version FROM schema_version ORDER BY 1"),
      ElementsAre("1", "2", "3"));
}

TEST(PostgresKeyStoreTest, ReplicasStartingTogetherMigrateOnce) {
  std::string db = NewDatabase();
  constexpr int kReplicas = 4;
  std::vector<absl::Status> results(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = OpenStore(db).status(); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(
      g_server->Column(db, "SELECT version FROM schema_version ORDER BY 1"),
      ElementsAre("1", "2", "3"));
}

TEST(PostgresKeyStoreTest, RefusesASchemaFromANewerVersion) {
  std::string db = NewDatabase();
  ASSERT_TRUE(OpenStore(db).ok());
  ASSERT_TRUE(
      g_server->Exec(db, "INSERT INTO schema_version VALUES (99)").ok());
  absl::StatusOr<std::unique_ptr<KeyStore>> store = OpenStore(db);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
  EXPECT_THAT(store.status().message(), HasSubstr(db));
}

TEST(PostgresKeyStoreTest, UnreachableServerIsUnavailable) {
  // Port 1 on loopback: nothing listens there.
  absl::StatusOr<std::unique_ptr<KeyStore>> store = PostgresKeyStore::Create(
      {"host=127.0.0.1 port=1 dbname=x user=postgres connect_timeout=5"});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr("connect"));
}

// Two replicas write the same server at once, each through its own notary.
// Every write adds a key of its own, so when writes are serialised the k-th
// one (in commit order) finds k earlier keys missing from its response and
// reports exactly k vanished keys: two writes that merged into the same
// stored state would report the same count. One replica's validity rises
// while the other's falls, so a lost update would also lower the maximum.
TEST(PostgresKeyStoreTest, TwoReplicasShareADatabase) {
  std::string db = NewDatabase();
  absl::StatusOr<std::unique_ptr<KeyStore>> one = OpenStore(db);
  absl::StatusOr<std::unique_ptr<KeyStore>> two = OpenStore(db);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(two.ok()) << two.status();
  constexpr int kWrites = 25;
  struct Log {
    absl::Status error;
    std::vector<size_t> vanished;  // per write
    int reported_a_new = 0;
  };
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
      for (const std::string& id : r->new_keys) {
        if (id == "ed25519:a") ++log->reported_a_new;
      }
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
  EXPECT_EQ(l1.reported_a_new + l2.reported_a_new, 1);

  // Both replicas read the same merged state.
  for (KeyStore* store : {one->get(), two->get()}) {
    absl::StatusOr<std::vector<StoredKey>> keys = store->GetKeys(kOrigin);
    ASSERT_TRUE(keys.ok()) << keys.status();
    ASSERT_EQ(keys->size(), size_t{2 * kWrites + 1});
    const StoredKey* a = FindKey(*keys, "ed25519:a");
    ASSERT_NE(a, nullptr);
    EXPECT_THAT(a->sources, ElementsAre(kNotaryA, kNotaryB));
    EXPECT_EQ(a->key.valid_until_ts, 2000 + kWrites - 1);
    EXPECT_EQ(a->first_seen_ts, 100);
    EXPECT_EQ(a->last_seen_ts, 100 + kWrites - 1);
    absl::StatusOr<std::vector<ServerSummary>> servers = store->ListServers();
    ASSERT_TRUE(servers.ok());
    EXPECT_THAT(*servers, ElementsAre(ServerSummary{
                              kOrigin, 2000 + kWrites - 1, 100 + kWrites - 1}));
  }
  // A write through one replica is seen by the other.
  ASSERT_TRUE((*one)
                  ->StoreResponse(SignedResponse("late.example", 10,
                                                 {{"ed25519:x", 'x'}}),
                                  "late.example", 1)
                  .ok());
  absl::StatusOr<std::vector<StoredKey>> late = (*two)->GetKeys("late.example");
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->size(), 1u);
}

TEST(PostgresKeyStoreTest, WritesOfOtherReplicasAreAnnounced) {
  std::string db = NewDatabase();
  absl::StatusOr<std::unique_ptr<KeyStore>> one = OpenStore(db);
  absl::StatusOr<std::unique_ptr<KeyStore>> two = OpenStore(db);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(two.ok()) << two.status();
  absl::Mutex mu;
  std::vector<std::string> heard;
  int key = 0;
  (*one)->WatchChanges(&key, [&](const std::vector<std::string>& servers) {
    absl::MutexLock lock(&mu);
    heard.insert(heard.end(), servers.begin(), servers.end());
  });
  // Whether `n` names were heard within `timeout`.
  struct AtLeast {
    const std::vector<std::string>* heard;
    size_t n;
    bool Done() const { return heard->size() >= n; }
  };
  auto wait_for = [&](size_t n, absl::Duration timeout = absl::Seconds(10)) {
    AtLeast at_least{&heard, n};
    absl::MutexLock lock(&mu);
    return mu.AwaitWithTimeout(absl::Condition(&at_least, &AtLeast::Done), timeout);
  };
  // The other replica's writes, single and batched, are heard.
  ASSERT_TRUE((*two)->StoreResponse(SignedResponse("a.example", 2000, {{"ed25519:a", 'a'}}),
                                    "a.example", 100)
                  .ok());
  ASSERT_TRUE(wait_for(1));
  const core::ServerKeys b = SignedResponse("b.example", 2000, {{"ed25519:b", 'b'}});
  const core::ServerKeys c = SignedResponse("c.example", 2000, {{"ed25519:c", 'c'}});
  std::vector<absl::StatusOr<WriteResult>> batch =
      (*two)->StoreResponses({{&b, "b.example"}, {&c, "c.example"}}, 101);
  ASSERT_TRUE(batch[0].ok() && batch[1].ok());
  ASSERT_TRUE(wait_for(3));
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(heard, ElementsAre("a.example", "b.example", "c.example"));
  }
  // Its own writes are not, nor anything after the watcher is removed.
  ASSERT_TRUE((*one)->StoreResponse(SignedResponse("d.example", 2000, {{"ed25519:d", 'd'}}),
                                    "d.example", 102)
                  .ok());
  (*one)->WatchChanges(&key, nullptr);
  ASSERT_TRUE((*two)->StoreResponse(SignedResponse("e.example", 2000, {{"ed25519:e", 'e'}}),
                                    "e.example", 103)
                  .ok());
  EXPECT_FALSE(wait_for(4, absl::Seconds(2)));  // nothing more comes
  absl::MutexLock lock(&mu);
  EXPECT_EQ(heard.size(), 3u);
}

TEST(PostgresKeyStoreTest, ACallWaitingOnTheDatabaseHoldsUpOnlyItself) {
  std::string db = NewDatabase();
  absl::StatusOr<std::unique_ptr<KeyStore>> store = OpenStore(db);
  ASSERT_TRUE(store.ok()) << store.status();
  // Another session holds the write lock of x.example.
  PGconn* other = PQconnectdb(g_server->ConnInfo(db).c_str());
  ASSERT_EQ(PQstatus(other), CONNECTION_OK);
  PQclear(PQexec(other, "BEGIN"));
  PGresult* locked = PQexec(other, "SELECT pg_advisory_xact_lock(27510, hashtext('x.example'))");
  ASSERT_EQ(PQresultStatus(locked), PGRES_TUPLES_OK) << PQerrorMessage(other);
  PQclear(locked);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    absl::StatusOr<WriteResult> r = (*store)->StoreResponse(
        SignedResponse("x.example", 2000, {{"ed25519:x", 'x'}}), "x.example", 100);
    EXPECT_TRUE(r.ok()) << r.status();
    written = true;
  });
  // While that write waits on its connection, the others serve.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<WriteResult> w = (*store)->StoreResponse(
        SignedResponse("y.example", 2000 + i, {{"ed25519:y", 'y'}}), "y.example", 100 + i);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*store)->GetKeys("y.example").ok());
  }
  EXPECT_FALSE(written.load());
  PQclear(PQexec(other, "COMMIT"));
  writer.join();
  EXPECT_TRUE(written.load());
  PQfinish(other);
  EXPECT_EQ((*store)->GetKeys("x.example")->size(), 1u);
}

TEST(PostgresKeyStoreTest, ReconnectsAfterTheConnectionIsLost) {
  std::string db = NewDatabase();
  absl::StatusOr<std::unique_ptr<KeyStore>> store = OpenStore(db);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)
                  ->StoreResponse(SignedResponse(kOrigin, 10,
                                                 {{"ed25519:a", 'a'}}),
                                  kOrigin, 1)
                  .ok());
  // Ends the store's connection from the server side, and waits until its
  // backend is gone.
  ASSERT_TRUE(g_server
                  ->Exec(db, absl::StrCat(
                                 "SELECT pg_terminate_backend(pid, 10000)"
                                 " FROM pg_stat_activity WHERE datname = '",
                                 db, "' AND pid <> pg_backend_pid()"))
                  .ok());
  // The first statement finds the connection gone; the next reconnects.
  absl::StatusOr<std::vector<StoredKey>> keys = (*store)->GetKeys(kOrigin);
  if (!keys.ok()) {
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kUnavailable)
        << keys.status();
    keys = (*store)->GetKeys(kOrigin);
  }
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(KeyIds(*keys), ElementsAre("ed25519:a"));

  // The same for a write: it fails whole or succeeds, never half.
  ASSERT_TRUE(g_server
                  ->Exec(db, absl::StrCat(
                                 "SELECT pg_terminate_backend(pid, 10000)"
                                 " FROM pg_stat_activity WHERE datname = '",
                                 db, "' AND pid <> pg_backend_pid()"))
                  .ok());
  core::ServerKeys next =
      SignedResponse(kOrigin, 20, {{"ed25519:a", 'a'}, {"ed25519:b", 'b'}});
  absl::StatusOr<WriteResult> w = (*store)->StoreResponse(next, kOrigin, 2);
  if (!w.ok()) {
    EXPECT_EQ(w.status().code(), absl::StatusCode::kUnavailable) << w.status();
    keys = (*store)->GetKeys(kOrigin);
    ASSERT_TRUE(keys.ok()) << keys.status();
    EXPECT_THAT(KeyIds(*keys), ElementsAre("ed25519:a"));
    w = (*store)->StoreResponse(next, kOrigin, 2);
  }
  ASSERT_TRUE(w.ok()) << w.status();
  keys = (*store)->GetKeys(kOrigin);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(KeyIds(*keys), ElementsAre("ed25519:a", "ed25519:b"));
}

// An outage: the store fails at once with UNAVAILABLE naming the trouble
// (one reconnect attempt per interval, not one connect timeout per call),
// and once the server is back it works again with nothing lost. A frozen
// server costs a new connection its connect timeout, not forever. (Last in
// this file: it stops the shared server, and starts it again.)
TEST(PostgresKeyStoreTest, OutagesFailFastAndTheStoreComesBack) {
  absl::StatusOr<std::string> db = NewDatabase();
  ASSERT_TRUE(db.ok()) << db.status();
  PostgresOptions options{g_server->ConnInfo(*db), absl::Milliseconds(500)};
  absl::StatusOr<std::unique_ptr<KeyStore>> store = PostgresKeyStore::Create(options);
  ASSERT_TRUE(store.ok()) << store.status();
  const core::ServerKeys a = SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}});
  ASSERT_TRUE((*store)->StoreResponse(a, kOrigin, 100).ok());

  // The test server runs without synchronous commits: make what was
  // committed durable before the crash, as a production server would.
  ASSERT_TRUE(g_server->Exec(*db, "CHECKPOINT").ok());
  ASSERT_TRUE(g_server->Stop().ok());
  absl::Status first = (*store)->GetKeys(kOrigin).status();
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  // Within the interval: no attempt at all, said so.
  for (int i = 0; i < 20; ++i) {
    absl::Status s = (*store)->GetKeys(kOrigin).status();
    ASSERT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    if (i > 0) EXPECT_THAT(s.message(), HasSubstr("the database is unreachable")) << s;
  }
  ASSERT_TRUE(g_server->Restart().ok());
  absl::SleepFor(absl::Milliseconds(600));
  absl::StatusOr<std::vector<StoredKey>> keys = (*store)->GetKeys(kOrigin);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 1u);  // nothing lost
  ASSERT_TRUE((*store)->StoreResponse(
      SignedResponse(kOrigin, 9000, {{"ed25519:b", 'b'}}), kOrigin, 200).ok());

  // Frozen: a new store's connection gives up after its connect timeout.
  ASSERT_TRUE(g_server->Freeze().ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<KeyStore>> frozen = PostgresKeyStore::Create(
      {absl::StrCat(g_server->ConnInfo(*db), " connect_timeout=2")});
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(g_server->Thaw().ok());
  EXPECT_EQ(frozen.status().code(), absl::StatusCode::kUnavailable) << frozen.status();
  EXPECT_LT(took, absl::Seconds(6));
  // The store made before the freeze still works.
  EXPECT_TRUE((*store)->GetKeys(kOrigin).ok());
}

}  // namespace
}  // namespace keyverifier::store::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(
      new keyverifier::store::testing::PostgresEnvironment());
  return RUN_ALL_TESTS();
}
