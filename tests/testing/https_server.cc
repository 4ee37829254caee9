#include "tests/testing/https_server.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace keyverifier::testing {

absl::StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Start(const Options& options) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(tmp ? tmp : "/tmp", "/https-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  const std::string dir = templ;
  const std::string routes = dir + "/routes.json";
  {
    std::ofstream f(routes);
    f << options.routes_json;
    if (!f) return absl::InternalError("could not write the routes file");
  }
  std::vector<std::string> args = {"/usr/bin/python3",
                                   "tests/testing/https_server.py",
                                   "--dir", dir,
                                   "--names", absl::StrJoin(options.names, ","),
                                   "--routes", routes,
                                   "--min-tls", options.min_tls,
                                   "--max-tls", options.max_tls};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe(out) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return absl::InternalError(absl::StrCat("spawning the HTTPS server: ", std::strerror(rc)));
  }
  std::unique_ptr<HttpsServer> server(new HttpsServer(pid, 0, dir));
  FILE* f = fdopen(out[0], "r");
  char line[128] = {0};
  bool got = f != nullptr && std::fgets(line, sizeof line, f) != nullptr;
  if (f != nullptr) std::fclose(f);
  absl::string_view l = absl::StripAsciiWhitespace(line);
  if (!got || !absl::ConsumePrefix(&l, "PORT ") || !absl::SimpleAtoi(l, &server->port_)) {
    return absl::InternalError("the HTTPS server did not start");
  }
  return server;
}

HttpsServer::~HttpsServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
}

std::vector<std::string> HttpsServer::Requests() const {
  std::ifstream f(dir_ + "/requests.jsonl");
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace keyverifier::testing
