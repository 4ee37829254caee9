#include "tests/store/postgres_server.h"

#include <fcntl.h>
#include <signal.h>
#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "tests/testing/free_port.h"

namespace keyverifier::store::testing {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};

absl::StatusOr<std::string> FindBinDir() {
  if (const char* env = std::getenv("KEYVERIFIER_POSTGRES_BIN")) return env;
  glob_t g;
  std::string best;
  int best_version = -1;
  if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string path = g.gl_pathv[i];
      std::string dir = path.substr(0, path.rfind('/'));
      std::string version = dir.substr(0, dir.rfind('/'));
      version = version.substr(version.rfind('/') + 1);
      int v = 0;
      if (absl::SimpleAtoi(version, &v) && v > best_version) {
        best_version = v;
        best = dir;
      }
    }
  }
  globfree(&g);
  if (best.empty()) {
    return absl::NotFoundError(
        "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
        "(install the postgresql package) and KEYVERIFIER_POSTGRES_BIN unset");
  }
  return best;
}

// runuser lives in an sbin directory, which a test's PATH may lack.
std::string Runuser() {
  for (const char* path : {"/usr/sbin/runuser", "/sbin/runuser",
                           "/usr/bin/runuser", "/bin/runuser"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "runuser";
}

// Runs argv (as user postgres when we are root) from "/", with stdout and
// stderr going to `log`; returns the exit status (127: not found).
int Run(std::vector<std::string> argv, const std::string& log) {
  if (geteuid() == 0) {
    argv.insert(argv.begin(), {Runuser(), "-u", "postgres", "--"});
  }
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir("/") != 0) _exit(126);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (pid < 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ReadFile(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  close(fd);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  absl::StatusOr<std::string> bin = FindBinDir();
  if (!bin.ok()) return bin.status();

  // Under /tmp: user postgres cannot enter the test's own temporary
  // directory when the test runs as root.
  char tmpl[] = "/tmp/keyverifier-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp under /tmp: ", std::strerror(errno)));
  }
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->dir_ = tmpl;
  const std::string& dir = server->dir_;
  std::string data = dir + "/data";
  std::string log = dir + "/commands.log";        // written as root
  std::string server_log = dir + "/server.log";   // written by the server
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::NotFoundError("running as root but there is no user "
                                 "postgres to run the server as");
    }
    if (chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return absl::InternalError(
          absl::StrCat("chown ", dir, ": ", std::strerror(errno)));
    }
  }

  // The guardian first, so that every later failure still cleans up.
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe2 failed");
  }
  std::string pg_ctl = *bin + "/pg_ctl";
  pid_t guardian = fork();
  if (guardian == 0) {
    setsid();  // not reached by signals sent to the test's process group
    close(fds[1]);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      close(null);
    }
    while (true) {
      char c;
      ssize_t n = read(fds[0], &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    struct stat st;
    if (stat((data + "/postmaster.pid").c_str(), &st) == 0) {
      Run({pg_ctl, "stop", "-D", data, "-m", "immediate", "-w"}, "/dev/null");
    }
    pid_t rm = fork();
    if (rm == 0) {
      execlp("rm", "rm", "-rf", dir.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    int status;
    waitpid(rm, &status, 0);
    _exit(0);
  }
  close(fds[0]);
  if (guardian < 0) {
    close(fds[1]);
    return absl::InternalError("fork of the guardian failed");
  }
  server->guardian_ = guardian;
  server->guardian_fd_ = fds[1];

  if (int rc = Run({*bin + "/initdb", "-D", data, "-A", "trust", "-U",
                    "postgres", "-E", "UTF8", "--no-locale", "--no-sync"},
                   log);
      rc != 0) {
    return absl::InternalError(absl::StrCat("initdb exited with ", rc, ":\n",
                                            ReadFile(log)));
  }
  // A port found free may be taken before the server binds it: retry.
  for (int attempt = 0; attempt < 5; ++attempt) {
    absl::StatusOr<int> port = keyverifier::testing::FreeLoopbackPort();
    if (!port.ok()) return port.status();
    std::string options = absl::StrCat(
        "-p ", *port, " -k ", dir,
        " -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off");
    if (Run({pg_ctl, "start", "-D", data, "-l", server_log, "-w", "-t", "60",
             "-o", options},
            log) == 0) {
      server->port_ = *port;
      server->pg_ctl_ = pg_ctl;
      server->data_ = data;
      server->server_log_ = server_log;
      server->options_ = options;
      return server;
    }
  }
  return absl::InternalError(
      absl::StrCat("pg_ctl start failed 5 times:\n", ReadFile(log), "\n",
                   ReadFile(server_log)));
}

absl::Status PostgresServer::Stop() {
  if (int rc = Run({pg_ctl_, "stop", "-D", data_, "-m", "immediate", "-w"}, "/dev/null");
      rc != 0) {
    return absl::InternalError(absl::StrCat("pg_ctl stop exited with ", rc));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Restart() {
  if (int rc = Run({pg_ctl_, "start", "-D", data_, "-l", server_log_, "-w", "-t", "60", "-o",
                    options_},
                   "/dev/null");
      rc != 0) {
    return absl::InternalError(
        absl::StrCat("pg_ctl start exited with ", rc, ":\n", ReadFile(server_log_)));
  }
  return absl::OkStatus();
}

namespace {
absl::Status SignalPostmaster(const std::string& data, int sig) {
  std::string pid_text = ReadFile(data + "/postmaster.pid");
  int pid = 0;
  if (!absl::SimpleAtoi(pid_text.substr(0, pid_text.find('\n')), &pid) || pid <= 0) {
    return absl::InternalError("no postmaster pid");
  }
  if (kill(pid, sig) != 0) return absl::InternalError("kill failed");
  return absl::OkStatus();
}
}  // namespace

absl::Status PostgresServer::Freeze() { return SignalPostmaster(data_, SIGSTOP); }
absl::Status PostgresServer::Thaw() { return SignalPostmaster(data_, SIGCONT); }

PostgresServer::~PostgresServer() {
  if (guardian_fd_ >= 0) close(guardian_fd_);
  if (guardian_ > 0) {
    int status;
    while (waitpid(guardian_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

std::string PostgresServer::ConnInfo(const std::string& dbname) const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " dbname=", dbname,
                      " user=postgres connect_timeout=10");
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase() {
  std::string name = absl::StrCat("test_", ++databases_);
  absl::Status s = Exec("postgres", absl::StrCat("CREATE DATABASE ", name));
  if (!s.ok()) return s;
  return name;
}

absl::Status PostgresServer::Exec(const std::string& dbname,
                                  const std::string& sql) {
  std::unique_ptr<PGconn, ConnCloser> conn(
      PQconnectdb(ConnInfo(dbname).c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("connect to ", dbname, ": ", PQerrorMessage(conn.get())));
  }
  std::unique_ptr<PGresult, ResultClearer> res(PQexec(conn.get(), sql.c_str()));
  ExecStatusType st = PQresultStatus(res.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return absl::InternalError(
        absl::StrCat(sql, ": ", PQresultErrorMessage(res.get())));
  }
  return absl::OkStatus();
}

std::vector<std::string> PostgresServer::Column(const std::string& dbname,
                                                const std::string& sql) {
  std::unique_ptr<PGconn, ConnCloser> conn(
      PQconnectdb(ConnInfo(dbname).c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return {absl::StrCat("error: connect: ", PQerrorMessage(conn.get()))};
  }
  std::unique_ptr<PGresult, ResultClearer> res(PQexec(conn.get(), sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    return {absl::StrCat("error: ", sql, ": ",
                         PQresultErrorMessage(res.get()))};
  }
  std::vector<std::string> out;
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    out.push_back(PQgetisnull(res.get(), r, 0) ? "NULL"
                                               : PQgetvalue(res.get(), r, 0));
  }
  return out;
}

}  // namespace keyverifier::store::testing
