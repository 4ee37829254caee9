// Direct access to a key store's SQLite file, for tests that set up or
// inspect the database behind the store's back.
#ifndef KEYVERIFIER_TESTS_STORE_SQLITE_TEST_UTIL_H_
#define KEYVERIFIER_TESTS_STORE_SQLITE_TEST_UTIL_H_

#include <sqlite3.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::store::testing {

class RawSqlite {
 public:
  static absl::StatusOr<RawSqlite> Open(const std::string& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             nullptr);
    RawSqlite raw(db);
    if (rc != SQLITE_OK) {
      return absl::InternalError(absl::StrCat("open ", path, ": ",
                                              sqlite3_errstr(rc)));
    }
    sqlite3_busy_timeout(db, 5000);
    return raw;
  }

  absl::Status Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
    std::string message = err ? err : "";
    sqlite3_free(err);
    if (rc != SQLITE_OK) {
      return absl::InternalError(absl::StrCat(sql, ": ", message));
    }
    return absl::OkStatus();
  }

  // The first column of every row, as text; on failure one "error: ..."
  // element, which no expectation matches.
  std::vector<std::string> Column(const std::string& sql) {
    std::vector<std::string> out;
    char* err = nullptr;
    int rc = sqlite3_exec(
        db_.get(), sql.c_str(),
        [](void* arg, int n, char** values, char**) {
          static_cast<std::vector<std::string>*>(arg)->push_back(
              n > 0 && values[0] ? values[0] : "NULL");
          return 0;
        },
        &out, &err);
    std::string message = err ? err : "";
    sqlite3_free(err);
    if (rc != SQLITE_OK) return {absl::StrCat("error: ", sql, ": ", message)};
    return out;
  }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  explicit RawSqlite(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, Closer> db_;
};

// A path for a new database file in the test's temporary directory.
inline std::string NewDatabasePath(const std::string& name) {
  static int counter = 0;
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir ? dir : "/tmp", "/", name, "-", ++counter,
                      ".sqlite3");
}

}  // namespace keyverifier::store::testing

#endif  // KEYVERIFIER_TESTS_STORE_SQLITE_TEST_UTIL_H_
