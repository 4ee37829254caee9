#include "service/net/cares_resolver.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace keyverifier::net {
namespace {

struct ChannelDeleter {
  void operator()(ares_channel c) const { ares_destroy(c); }
};
using Channel = std::unique_ptr<std::remove_pointer_t<ares_channel>, ChannelDeleter>;

struct AddrinfoDeleter {
  void operator()(ares_addrinfo* a) const { ares_freeaddrinfo(a); }
};
struct SrvDeleter {
  void operator()(ares_srv_reply* r) const { ares_free_data(r); }
};

bool LibraryReady() {
  static const bool ok = ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS;
  return ok;
}

absl::Status LookupError(int code, absl::string_view type, absl::string_view name) {
  std::string what = absl::StrCat(type, " lookup of ", name, ": ", ares_strerror(code));
  switch (code) {
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
      return absl::NotFoundError(what);
    case ARES_EBADNAME:
      return absl::InvalidArgumentError(what);
    default:
      return absl::UnavailableError(what);
  }
}

// Runs `channel` until its queries are done or `deadline` passes.
absl::Status Drive(ares_channel channel, absl::Time deadline, absl::string_view what) {
  for (;;) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
    pollfd fds[ARES_GETSOCK_MAXNUM];
    int n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events == 0) continue;
      fds[n].fd = socks[i];
      fds[n].events = events;
      fds[n].revents = 0;
      ++n;
    }
    timeval tv{};
    timeval* next = ares_timeout(channel, nullptr, &tv);
    if (n == 0 && next == nullptr) return absl::OkStatus();  // all done
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      ares_cancel(channel);
      return absl::DeadlineExceededError(absl::StrCat(what, ": deadline passed"));
    }
    absl::Duration wait = left;
    if (next != nullptr) {
      wait = std::min(wait, absl::Seconds(next->tv_sec) + absl::Microseconds(next->tv_usec));
    }
    int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(wait)));
    int ready = poll(fds, n, ms);
    if (ready < 0 && errno != EINTR) {
      ares_cancel(channel);
      return absl::UnavailableError(absl::StrCat(what, ": poll: ", std::strerror(errno)));
    }
    if (ready <= 0) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
      continue;
    }
    for (int i = 0; i < n; ++i) {
      ares_socket_t r = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd
                                                                       : ARES_SOCKET_BAD;
      ares_socket_t w = (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
      if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD) ares_process_fd(channel, r, w);
    }
  }
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

}  // namespace

CaresResolver::CaresResolver(Options options,
                             std::map<std::string, std::vector<IpAddress>> overrides)
    : options_(std::move(options)), overrides_(std::move(overrides)) {}

CaresResolver::~CaresResolver() = default;

absl::StatusOr<std::unique_ptr<CaresResolver>> CaresResolver::Create(
    const Options& options) {
  if (!LibraryReady()) return absl::InternalError("c-ares could not be initialised");
  if (options.tries < 1) {
    return absl::InvalidArgumentError("dns tries must be at least 1");
  }
  if (options.query_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("dns query timeout must be positive");
  }
  std::map<std::string, std::vector<IpAddress>> overrides;
  for (const auto& [host, addresses] : options.host_overrides) {
    if (host.empty() || addresses.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("host override \"", host, "\" needs a host and at least one address"));
    }
    std::vector<IpAddress>& out = overrides[Lower(host)];
    for (const std::string& a : addresses) {
      absl::StatusOr<IpAddress> ip = ParseIpAddress(a);
      if (!ip.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("host override for ", host, ": ", ip.status().message()));
      }
      out.push_back(*ip);
    }
  }
  auto resolver = std::unique_ptr<CaresResolver>(
      new CaresResolver(options, std::move(overrides)));
  // Check the server list once, so a typo stops the start rather than every
  // lookup.
  if (!options.servers.empty()) {
    ares_channel raw = nullptr;
    if (ares_init(&raw) != ARES_SUCCESS) {
      return absl::InternalError("c-ares channel could not be created");
    }
    Channel channel(raw);
    int rc = ares_set_servers_ports_csv(channel.get(), options.servers.c_str());
    if (rc != ARES_SUCCESS) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dns servers \"", options.servers, "\": ", ares_strerror(rc)));
    }
  }
  return resolver;
}

namespace {

absl::StatusOr<Channel> NewChannel(const CaresResolver::Options& o) {
  ares_options opts{};
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  opts.timeout = static_cast<int>(absl::ToInt64Milliseconds(o.query_timeout));
  opts.tries = o.tries;
  // With explicit servers, answers come from them alone (no /etc/hosts).
  char lookups[] = "b";
  if (!o.servers.empty()) {
    mask |= ARES_OPT_LOOKUPS;
    opts.lookups = lookups;
  }
  ares_channel raw = nullptr;
  int rc = ares_init_options(&raw, &opts, mask);
  if (rc != ARES_SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("c-ares channel could not be created: ", ares_strerror(rc)));
  }
  Channel channel(raw);
  if (!o.servers.empty()) {
    rc = ares_set_servers_ports_csv(channel.get(), o.servers.c_str());
    if (rc != ARES_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("dns servers: ", ares_strerror(rc)));
    }
  }
  return channel;
}

struct SrvQuery {
  int status = ARES_ETIMEOUT;
  std::vector<SrvRecord> records;
  bool done = false;
};

void OnSrv(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  auto* q = static_cast<SrvQuery*>(arg);
  q->done = true;
  q->status = status;
  if (status != ARES_SUCCESS) return;
  ares_srv_reply* raw = nullptr;
  q->status = ares_parse_srv_reply(abuf, alen, &raw);
  std::unique_ptr<ares_srv_reply, SrvDeleter> reply(raw);
  for (ares_srv_reply* r = raw; r != nullptr; r = r->next) {
    SrvRecord rec;
    rec.target = r->host;
    if (!rec.target.empty() && rec.target.back() == '.') rec.target.pop_back();
    rec.port = r->port;
    rec.priority = r->priority;
    rec.weight = r->weight;
    q->records.push_back(std::move(rec));
  }
}

struct HostQuery {
  int status = ARES_ETIMEOUT;
  std::vector<IpAddress> addresses;
  bool done = false;
};

void OnHost(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  auto* q = static_cast<HostQuery*>(arg);
  std::unique_ptr<ares_addrinfo, AddrinfoDeleter> owned(result);
  q->done = true;
  q->status = status;
  if (status != ARES_SUCCESS || result == nullptr) return;
  std::vector<IpAddress> v6, v4;
  for (ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
    IpAddress a;
    if (n->ai_family == AF_INET6) {
      const auto* sa = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
      std::memcpy(a.bytes.data(), &sa->sin6_addr, 16);
      v6.push_back(a);
    } else if (n->ai_family == AF_INET) {
      const auto* sa = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
      a.v4 = true;
      std::memcpy(a.bytes.data(), &sa->sin_addr, 4);
      v4.push_back(a);
    }
  }
  for (auto* list : {&v6, &v4}) {
    for (const IpAddress& a : *list) {
      if (std::find(q->addresses.begin(), q->addresses.end(), a) == q->addresses.end()) {
        q->addresses.push_back(a);
      }
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<SrvRecord>> CaresResolver::LookupSrv(absl::string_view name,
                                                                absl::Time deadline) {
  absl::StatusOr<Channel> channel = NewChannel(options_);
  if (!channel.ok()) return channel.status();
  SrvQuery q;
  const std::string n(name);
  ares_query(channel->get(), n.c_str(), ns_c_in, ns_t_srv, OnSrv, &q);
  if (absl::Status s = Drive(channel->get(), deadline, absl::StrCat("SRV lookup of ", name));
      !s.ok()) {
    return s;
  }
  if (q.status != ARES_SUCCESS) return LookupError(q.status, "SRV", name);
  if (q.records.empty()) return LookupError(ARES_ENODATA, "SRV", name);
  return q.records;
}

absl::StatusOr<std::vector<IpAddress>> CaresResolver::LookupHost(absl::string_view host,
                                                                 absl::Time deadline) {
  if (auto it = overrides_.find(Lower(host)); it != overrides_.end()) return it->second;
  absl::StatusOr<Channel> channel = NewChannel(options_);
  if (!channel.ok()) return channel.status();
  HostQuery q;
  const std::string h(host);
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(channel->get(), h.c_str(), nullptr, &hints, OnHost, &q);
  if (absl::Status s =
          Drive(channel->get(), deadline, absl::StrCat("address lookup of ", host));
      !s.ok()) {
    return s;
  }
  if (q.status != ARES_SUCCESS) return LookupError(q.status, "A/AAAA", host);
  if (q.addresses.empty()) return LookupError(ARES_ENODATA, "A/AAAA", host);
  return q.addresses;
}

}  // namespace keyverifier::net
