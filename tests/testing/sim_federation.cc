#include "tests/testing/sim_federation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/core/base64.h"
#include "service/core/json.h"
#include "service/core/verify_key.h"
#include "tests/testing/server_name.h"

extern char** environ;

namespace keyverifier::testing {
namespace {

constexpr char kScript[] = "tests/testing/sim_federation.py";
// Python's imports and the PKI take a moment, longer on a loaded machine.
constexpr absl::Duration kStartTimeout = absl::Seconds(60);
// A /stats answer for thousands of servers is large but quick.
constexpr int kControlTimeoutSeconds = 30;

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// The first line `fd` gives before `deadline`, without the newline.
absl::StatusOr<std::string> ReadLine(int fd, absl::Time deadline) {
  std::string line;
  char c = 0;
  while (true) {
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) return absl::DeadlineExceededError("no line in time");
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(wait_ms));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(absl::StrCat("end of output after \"", line, "\""));
    if (c == '\n') return line;
    line.push_back(c);
  }
}

absl::Status CheckIndices(const std::vector<int>& indices, int servers, absl::string_view what) {
  for (int i : indices) {
    if (i < 0 || i >= servers) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " server ", i, " is not one of 0..", servers - 1));
    }
  }
  return absl::OkStatus();
}

int64_t IntMember(const core::Value& object, absl::string_view key) {
  const core::Value* v = object.Find(key);
  return v != nullptr && v->is_number() ? v->int_value() : 0;
}

std::map<std::string, int64_t> IntMap(const core::Value& object, absl::string_view key) {
  std::map<std::string, int64_t> out;
  const core::Value* v = object.Find(key);
  if (v == nullptr || !v->is_object()) return out;
  for (const auto& [k, n] : v->members()) {
    if (n.is_number()) out[k] = n.int_value();
  }
  return out;
}

}  // namespace

int64_t SimFederation::Stats::Requests(absl::string_view host, absl::string_view path) const {
  auto h = requests.find(std::string(host));
  if (h == requests.end()) return 0;
  auto p = h->second.find(std::string(path));
  return p == h->second.end() ? 0 : p->second;
}

int64_t SimFederation::Stats::RequestsTo(absl::string_view path) const {
  int64_t total = 0;
  for (const auto& [host, paths] : requests) {
    auto p = paths.find(std::string(path));
    if (p != paths.end()) total += p->second;
  }
  return total;
}

int64_t SimFederation::Stats::PeakConnectionsTo(absl::string_view host) const {
  auto h = peak_connections_by_host.find(std::string(host));
  return h == peak_connections_by_host.end() ? 0 : h->second;
}

std::string SimFederation::ServerName(int i) { return absl::StrCat("s", i, ".sim.test"); }

core::Ed25519SigningKey SimFederation::SigningKeyOf(const std::string& server_name) {
  // A 32-byte seed always makes a key.
  return *core::Ed25519SigningKey::FromSeed(core::AsStringView(core::Sha256(server_name)));
}

std::string SimFederation::PublicKeyBase64(const std::string& server_name) {
  return core::EncodeBase64Unpadded(core::AsStringView(SigningKeyOf(server_name).public_key()));
}

core::PinnedNotary SimFederation::pinned_notary() const {
  core::PinnedNotary notary{Name(notary_name()), {}};
  core::VerifyKey key;
  key.key_id = std::string(kKeyId);
  key.public_key = SigningKeyOf(notary_name()).public_key();
  notary.keys.push_back(key);
  return notary;
}

absl::StatusOr<std::unique_ptr<SimFederation>> SimFederation::Start(const Options& options) {
  if (options.servers < 1) return absl::InvalidArgumentError("a sim needs at least one server");
  if (absl::Status s = CheckIndices(options.dead, options.servers, "dead"); !s.ok()) return s;
  if (absl::Status s = CheckIndices(options.slow, options.servers, "slow"); !s.ok()) return s;
  if (absl::Status s = CheckIndices(options.well_known, options.servers, "well_known");
      !s.ok()) {
    return s;
  }
  if (options.delay_ms < 0 || options.slow_delay_ms < 0 || options.notary_delay_ms < 0 ||
      options.valid_for_ms < 0) {
    return absl::InvalidArgumentError("delays and valid_for_ms must not be negative");
  }
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(tmp ? tmp : "/tmp", "/sim-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  std::vector<std::string> args = {"/usr/bin/python3",
                                   kScript,
                                   "--dir", templ,
                                   "--servers", absl::StrCat(options.servers),
                                   "--dead", absl::StrJoin(options.dead, ","),
                                   "--slow", absl::StrJoin(options.slow, ","),
                                   "--delay-ms", absl::StrCat(options.delay_ms),
                                   "--slow-delay-ms", absl::StrCat(options.slow_delay_ms),
                                   "--notary-delay-ms", absl::StrCat(options.notary_delay_ms),
                                   "--valid-for-ms", absl::StrCat(options.valid_for_ms),
                                   "--legacy-srv", absl::StrJoin(options.legacy_srv, ","),
                                   "--cname-srv", absl::StrJoin(options.cname_srv, ","),
                                   "--split-keys", absl::StrJoin(options.split_keys, ","),
                                   "--well-known", absl::StrJoin(options.well_known, ","),
                                   "--exit-on-stdin-eof"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Close-on-exec, so that other processes this test starts do not keep the
  // script's stdin open.
  int in[2];
  int out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  Fd in_read(in[0]), in_write(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  Fd out_read(out[0]), out_write(out[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("spawning ", kScript, ": ", std::strerror(rc)));
  }
  std::unique_ptr<SimFederation> sim(new SimFederation(pid, in_write.release(), templ));
  close(out_write.release());  // so that its end of output is seen

  absl::StatusOr<std::string> line = ReadLine(out_read.get(), absl::Now() + kStartTimeout);
  if (!line.ok()) {
    return absl::InternalError(absl::StrCat(kScript, " did not start: ", line.status().message()));
  }
  absl::string_view rest = absl::StripAsciiWhitespace(*line);
  if (!absl::ConsumePrefix(&rest, "PORTS ")) {
    return absl::InternalError(absl::StrCat(kScript, " printed \"", *line, "\", not its ports"));
  }
  for (absl::string_view field : absl::StrSplit(rest, ' ', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(field, '=');
    int* port = kv.first == "https"     ? &sim->https_port_
                : kv.first == "dead"    ? &sim->dead_port_
                : kv.first == "control" ? &sim->control_port_
                : kv.first == "alt"     ? &sim->alt_port_
                                        : nullptr;
    if (port != nullptr && !absl::SimpleAtoi(kv.second, port)) {
      return absl::InternalError(absl::StrCat("bad port in \"", *line, "\""));
    }
  }
  if (sim->https_port_ <= 0 || sim->dead_port_ <= 0 || sim->control_port_ <= 0) {
    return absl::InternalError(absl::StrCat("ports missing from \"", *line, "\""));
  }

  Dnsmasq::Records records;
  records.local_domains = {"sim.test"};
  records.options = {absl::StrCat("--conf-file=", sim->dir_, "/dnsmasq.conf")};
  absl::StatusOr<std::unique_ptr<Dnsmasq>> dns = Dnsmasq::Start(records);
  if (!dns.ok()) return dns.status();
  sim->dns_ = *std::move(dns);
  return sim;
}

SimFederation::~SimFederation() {
  dns_.reset();
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (stdin_fd_ >= 0) close(stdin_fd_);
}

absl::StatusOr<std::string> SimFederation::Control(absl::string_view method,
                                                   absl::string_view path,
                                                   absl::string_view body) const {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  timeval timeout{kControlTimeoutSeconds, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(control_port_));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return absl::InternalError(
        absl::StrCat("connecting to the control port ", control_port_, ": ", std::strerror(errno)));
  }
  // HTTP/1.0: the answer ends when the connection does.
  const std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: ",
                   body.size(), "\r\nContent-Type: application/json\r\n\r\n", body);
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError(absl::StrCat("sending ", path, ": ", std::strerror(errno)));
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buf[16384];
  while (true) {
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("reading ", path, ": ", std::strerror(errno)));
    if (n == 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    return absl::InternalError(absl::StrCat(method, " ", path, ": no HTTP answer"));
  }
  absl::string_view status_line = absl::string_view(response).substr(0, response.find("\r\n"));
  std::string answer = response.substr(head_end + 4);
  if (!absl::StartsWith(status_line, "HTTP/1.1 200 ") &&
      !absl::StartsWith(status_line, "HTTP/1.0 200 ")) {
    return absl::InternalError(
        absl::StrCat(method, " ", path, ": \"", status_line, "\": ", answer));
  }
  return answer;
}

absl::StatusOr<SimFederation::Stats> SimFederation::GetStats() const {
  absl::StatusOr<std::string> body = Control("GET", "/stats", "");
  if (!body.ok()) return body.status();
  core::ParseOptions parse;
  parse.max_bytes = size_t{256} << 20;
  absl::StatusOr<core::Value> v = core::ParseJson(*body, parse);
  if (!v.ok()) return absl::InternalError(absl::StrCat("/stats: ", v.status().message()));
  if (!v->is_object()) return absl::InternalError("/stats: not a JSON object");
  Stats stats;
  if (const core::Value* requests = v->Find("requests"); requests != nullptr &&
                                                          requests->is_object()) {
    for (const auto& [host, paths] : requests->members()) {
      for (const auto& [path, n] : paths.members()) {
        if (n.is_number()) stats.requests[host][path] = n.int_value();
      }
    }
  }
  if (const core::Value* sizes = v->Find("post_batch_sizes"); sizes != nullptr &&
                                                               sizes->is_array()) {
    for (const core::Value& n : sizes->array()) {
      stats.post_batch_sizes.push_back(n.is_number() ? n.int_value() : -1);
    }
  }
  stats.requests_in_flight = IntMember(*v, "requests_in_flight");
  stats.peak_requests_in_flight = IntMember(*v, "peak_requests_in_flight");
  stats.open_connections = IntMember(*v, "open_connections");
  stats.peak_connections = IntMember(*v, "peak_connections");
  stats.open_https_connections = IntMember(*v, "open_https_connections");
  stats.peak_https_connections = IntMember(*v, "peak_https_connections");
  stats.accepted_https_connections = IntMember(*v, "accepted_https_connections");
  stats.open_dead_connections = IntMember(*v, "open_dead_connections");
  stats.peak_dead_connections = IntMember(*v, "peak_dead_connections");
  stats.accepted_dead_connections = IntMember(*v, "accepted_dead_connections");
  stats.open_connections_by_host = IntMap(*v, "open_connections_by_host");
  stats.peak_connections_by_host = IntMap(*v, "peak_connections_by_host");
  return stats;
}

absl::Status SimFederation::Reset() { return Control("POST", "/reset", "").status(); }

absl::Status SimFederation::Configure(absl::string_view json) {
  return Control("POST", "/config", json).status();
}

}  // namespace keyverifier::testing
