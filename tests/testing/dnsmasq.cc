#include "tests/testing/dnsmasq.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace keyverifier::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// Runs bind (or connect) on a new socket of `type` to 127.0.0.1:port.
bool TrySocket(int type, int port, bool connect_instead) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return false;
  sockaddr_in sa = Loopback(port);
  auto* addr = reinterpret_cast<sockaddr*>(&sa);
  bool ok = (connect_instead ? connect(fd, addr, sizeof sa) : bind(fd, addr, sizeof sa)) == 0;
  close(fd);
  return ok;
}

bool Bindable(int type, int port) { return TrySocket(type, port, false); }

// Whether something listens on 127.0.0.1:port over TCP (dnsmasq opens its
// TCP and UDP sockets together).
bool Listening(int port) { return TrySocket(SOCK_STREAM, port, true); }

}  // namespace

absl::StatusOr<int> FreeLoopbackPort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return absl::InternalError(std::strerror(errno));
    sockaddr_in sa = Loopback(0);
    socklen_t len = sizeof sa;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      close(fd);
      return absl::InternalError(std::strerror(errno));
    }
    int port = ntohs(sa.sin_port);
    close(fd);
    if (Bindable(SOCK_DGRAM, port) && Bindable(SOCK_STREAM, port)) return port;
  }
  return absl::InternalError("no free loopback port");
}

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
  while (!Listening(*port)) {
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
