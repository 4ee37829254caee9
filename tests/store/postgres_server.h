// A throwaway PostgreSQL server for tests, on a free loopback port.
//
// Start runs initdb (trust authentication, fsync off) in a new directory
// under /tmp and starts the server with pg_ctl; as root, both run as user
// postgres, which refuses to run as root. A guardian process stops the
// server and removes the directory when the PostgresServer is destroyed or
// when the test process dies in any way (it watches a pipe that closes with
// the test), so no server outlives its test.
//
// The binaries are found under /usr/lib/postgresql/<version>/bin (Debian's
// postgresql package), or in $KEYVERIFIER_POSTGRES_BIN.
//
// Not thread-safe; start one per test binary (a global test environment).
#ifndef KEYVERIFIER_TESTS_STORE_POSTGRES_SERVER_H_
#define KEYVERIFIER_TESTS_STORE_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace keyverifier::store::testing {

class PostgresServer {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // A libpq connection string for `dbname` as the superuser.
  std::string ConnInfo(const std::string& dbname) const;

  // Stops the server at once (pg_ctl stop -m immediate), as a crash or an
  // outage would; Restart starts it again on the same port and data.
  absl::Status Stop();
  absl::Status Restart();
  // Freezes the postmaster (SIGSTOP), as a hung host would: connections
  // already made go on, new ones get no answer. Thaw resumes it.
  absl::Status Freeze();
  absl::Status Thaw();

  // Creates a new, empty database and returns its name.
  absl::StatusOr<std::string> CreateDatabase();
  // Runs `sql` (one or more statements) in `dbname`.
  absl::Status Exec(const std::string& dbname, const std::string& sql);
  // The first column of every row of `sql`, as text ("NULL" for null); on
  // failure one "error: ..." element.
  std::vector<std::string> Column(const std::string& dbname,
                                  const std::string& sql);

 private:
  PostgresServer() = default;

  std::string dir_;
  std::string pg_ctl_, data_, server_log_, options_;
  int port_ = 0;
  int databases_ = 0;
  pid_t guardian_ = -1;
  int guardian_fd_ = -1;  // closing it tells the guardian to stop the server
};

}  // namespace keyverifier::store::testing

#endif  // KEYVERIFIER_TESTS_STORE_POSTGRES_SERVER_H_
