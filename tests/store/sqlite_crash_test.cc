// A write the SQLite store reported as committed survives the writing
// process being killed (SIGKILL) in the middle of later writes, and the file
// it leaves behind is intact.
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/store/sqlite_key_store.h"
#include "tests/store/sqlite_test_util.h"
#include "tests/store/test_responses.h"

namespace keyverifier::store::testing {
namespace {

using ::testing::ElementsAre;

std::string ServerOf(int i) { return absl::StrCat("s", i, ".example"); }

core::ServerKeys ResponseOf(int i) {
  return SignedResponse(ServerOf(i), 100000 + i,
                        {{"ed25519:a", static_cast<char>('a' + i % 26)},
                         {"ed25519:b", static_cast<char>('A' + i % 26)},
                         {"ed25519:old", 'o', 50 + i}});
}

// The child: writes responses first, first+1, ... until it is killed (a
// bounded run could end first on a machine where commits are cheap and the
// parent slow), reporting each committed one as a 4-byte index on `fd`.
[[noreturn]] void WriteUntilKilled(const std::string& path, int first, int fd) {
  absl::StatusOr<std::unique_ptr<KeyStore>> store =
      SqliteKeyStore::Create({path});
  if (!store.ok()) _exit(2);
  for (int i = first;; ++i) {
    absl::StatusOr<WriteResult> r =
        (*store)->StoreResponse(ResponseOf(i), ServerOf(i), 1000 + i);
    if (!r.ok()) _exit(3);
    int32_t n = i;
    if (write(fd, &n, sizeof n) != sizeof n) _exit(4);
  }
}

// Runs a writer from `first`, kills it after `wanted` reported commits and
// returns every index it reported.
std::vector<int> CrashWriter(const std::string& path, int first, int wanted) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    WriteUntilKilled(path, first, fds[1]);
  }
  close(fds[1]);
  std::vector<int> committed;
  while (static_cast<int>(committed.size()) < wanted) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) break;
    int32_t n;
    if (read(fds[0], &n, sizeof n) != sizeof n) break;
    committed.push_back(n);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer ended before it was killed (status " << status << ")";
  // Reports already in the pipe were committed before the kill too.
  int32_t n;
  while (read(fds[0], &n, sizeof n) == sizeof n) committed.push_back(n);
  close(fds[0]);
  EXPECT_GE(static_cast<int>(committed.size()), wanted);
  return committed;
}

void ExpectCommitted(KeyStore& store, const std::vector<int>& committed) {
  for (int i : committed) {
    SCOPED_TRACE(ServerOf(i));
    absl::StatusOr<std::vector<StoredResponse>> responses =
        store.GetResponses(ServerOf(i));
    ASSERT_TRUE(responses.ok()) << responses.status();
    ASSERT_EQ(responses->size(), 1u);
    EXPECT_EQ((*responses)[0].raw_json, ResponseOf(i).raw_json);
    EXPECT_EQ((*responses)[0].fetched_ts, 1000 + i);
    absl::StatusOr<std::vector<StoredKey>> keys = store.GetKeys(ServerOf(i));
    ASSERT_TRUE(keys.ok()) << keys.status();
    ASSERT_EQ(keys->size(), 3u);
    EXPECT_EQ((*keys)[0].key.public_key, PublicKeyOf('a' + i % 26));
    EXPECT_EQ((*keys)[2].key.expired_ts, 50 + i);
  }
}

TEST(SqliteCrashTest, CommittedWritesSurviveKill) {
  std::string path = NewDatabasePath("crash");
  std::vector<int> committed = CrashWriter(path, 0, 25);
  // A second writer recovers the file and is killed in turn.
  std::vector<int> more = CrashWriter(path, 1000000, 25);
  committed.insert(committed.end(), more.begin(), more.end());

  {
    absl::StatusOr<RawSqlite> db = RawSqlite::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_THAT(db->Column("PRAGMA integrity_check"), ElementsAre("ok"));
  }
  absl::StatusOr<std::unique_ptr<KeyStore>> store =
      SqliteKeyStore::Create({path});
  ASSERT_TRUE(store.ok()) << store.status();
  ExpectCommitted(**store, committed);
  // No index is reported twice and the store holds a server for each one
  // (plus at most one write per writer that committed but was not reported).
  std::set<int> unique(committed.begin(), committed.end());
  EXPECT_EQ(unique.size(), committed.size());
  absl::StatusOr<std::vector<ServerSummary>> servers = (*store)->ListServers();
  ASSERT_TRUE(servers.ok()) << servers.status();
  EXPECT_GE(servers->size(), committed.size());
  EXPECT_LE(servers->size(), committed.size() + 2);
  // And it takes writes again.
  EXPECT_TRUE(
      (*store)->StoreResponse(ResponseOf(5000), ServerOf(5000), 1).ok());
}

}  // namespace
}  // namespace keyverifier::store::testing
