#include "tests/testing/dnsmasq.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/free_port.h"

extern char** environ;

namespace keyverifier::testing {
namespace {

}  // namespace

absl::StatusOr<std::unique_ptr<Dnsmasq>> Dnsmasq::Start(const Records& records) {
  absl::StatusOr<int> port = FreeLoopbackPort();
  if (!port.ok()) return port.status();
  const passwd* pw = getpwuid(geteuid());
  const group* gr = getgrgid(getegid());
  std::vector<std::string> args = {
      "/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
      absl::StrCat("--port=", *port), "--listen-address=127.0.0.1",
      "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=",
      absl::StrCat("--user=", pw ? pw->pw_name : "root"),
      absl::StrCat("--group=", gr ? gr->gr_name : "root"), "--log-facility=-"};
  for (const auto& d : records.local_domains) args.push_back(absl::StrCat("--local=/", d, "/"));
  for (const auto& s : records.srv_hosts) args.push_back(absl::StrCat("--srv-host=", s));
  for (const auto& h : records.host_records) args.push_back(absl::StrCat("--host-record=", h));
  for (const auto& c : records.cnames) args.push_back(absl::StrCat("--cname=", c));
  args.insert(args.end(), records.options.begin(), records.options.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("spawning dnsmasq: ", std::strerror(rc)));
  }
  std::unique_ptr<Dnsmasq> server(new Dnsmasq(pid, *port));
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!ListeningOnLoopback(*port)) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      return absl::InternalError(
          absl::StrCat("dnsmasq exited with status ", status, " before answering"));
    }
    if (absl::Now() > give_up) return absl::InternalError("dnsmasq did not start");
    absl::SleepFor(absl::Milliseconds(20));
  }
  return server;
}

Dnsmasq::~Dnsmasq() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
}

}  // namespace keyverifier::testing
