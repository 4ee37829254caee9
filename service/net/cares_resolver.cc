#include "service/net/cares_resolver.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace keyverifier::net {
namespace {

struct AddrinfoDeleter {
  void operator()(ares_addrinfo* a) const { ares_freeaddrinfo(a); }
};
struct SrvDeleter {
  void operator()(ares_srv_reply* r) const { ares_free_data(r); }
};

absl::Status LookupError(int code, absl::string_view type, absl::string_view name) {
  std::string what = absl::StrCat(type, " lookup of ", name, ": ", ares_strerror(code));
  switch (code) {
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
      return absl::NotFoundError(what);
    case ARES_EBADNAME:
      return absl::InvalidArgumentError(what);
    case ARES_ECANCELLED:    // the engine stopped
    case ARES_EDESTRUCTION:  // its channel went away (stop, or reconfigured)
      return absl::CancelledError(what);
    default:
      return absl::UnavailableError(what);
  }
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

// One lookup in flight. Shared by the c-ares query and the deadline timer:
// whichever finishes first answers, the other finds it done and only lets
// go of its reference.
template <typename T>
class Lookup {
 public:
  Lookup(FetchEngine& engine, std::string name, std::string what,
         async::Callback<T> done)
      : engine_(engine), name_(std::move(name)), what_(std::move(what)),
        done_(std::move(done)) {}

  const std::string& name() const { return name_; }
  // "SRV lookup of <name>", for the errors this class makes.
  const std::string& what() const { return what_; }

  void set_timer(async::Scheduler::TimerId id) {
    absl::MutexLock lock(&mu_);
    timer_ = id;
  }

  bool finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

  void Finish(absl::StatusOr<T> result) {
    async::Callback<T> done;
    async::Scheduler::TimerId timer = 0;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      done = std::move(done_);
      timer = timer_;
    }
    if (timer != 0) engine_.Cancel(timer);
    done(std::move(result));
  }

 private:
  FetchEngine& engine_;
  const std::string name_;
  const std::string what_;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  async::Callback<T> done_ ABSL_GUARDED_BY(mu_);
  async::Scheduler::TimerId timer_ ABSL_GUARDED_BY(mu_) = 0;
};

using SrvLookup = Lookup<std::vector<SrvRecord>>;
using HostLookup = Lookup<std::vector<IpAddress>>;

// Arms the deadline timer, then issues the query on the engine's channel
// with `issue(channel, arg)`, where `arg` is a heap-held reference to the
// lookup that c-ares hands back to its callback (exactly once, also when
// the channel is cancelled or destroyed).
template <typename T, typename Issue>
void Start(FetchEngine& engine, std::shared_ptr<Lookup<T>> q, absl::Time deadline,
           Issue issue) {
  q->set_timer(engine.RunAt(deadline, [q, deadline] {
    // Early only when the engine stops and runs every timer at once.
    q->Finish(absl::Now() < deadline
                  ? absl::CancelledError(absl::StrCat(q->what(), ": the fetch engine stopped"))
                  : absl::DeadlineExceededError(absl::StrCat(q->what(), ": deadline passed")));
  }));
  engine.WithDns([q, issue = std::move(issue)](void* channel) mutable {
    if (channel == nullptr) {
      q->Finish(absl::CancelledError(absl::StrCat(q->what(), ": the fetch engine stopped")));
      return;
    }
    if (q->finished()) return;  // the deadline passed before the loop got here
    issue(static_cast<ares_channel>(channel), new std::shared_ptr<Lookup<T>>(q));
  });
}

void OnSrv(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<std::shared_ptr<SrvLookup>> ref(static_cast<std::shared_ptr<SrvLookup>*>(arg));
  SrvLookup& q = **ref;
  if (status != ARES_SUCCESS) return q.Finish(LookupError(status, "SRV", q.name()));
  ares_srv_reply* raw = nullptr;
  status = ares_parse_srv_reply(abuf, alen, &raw);
  std::unique_ptr<ares_srv_reply, SrvDeleter> reply(raw);
  if (status != ARES_SUCCESS) return q.Finish(LookupError(status, "SRV", q.name()));
  std::vector<SrvRecord> records;
  for (ares_srv_reply* r = raw; r != nullptr; r = r->next) {
    SrvRecord rec;
    rec.target = r->host;
    if (!rec.target.empty() && rec.target.back() == '.') rec.target.pop_back();
    rec.port = r->port;
    rec.priority = r->priority;
    rec.weight = r->weight;
    records.push_back(std::move(rec));
  }
  if (records.empty()) return q.Finish(LookupError(ARES_ENODATA, "SRV", q.name()));
  q.Finish(std::move(records));
}

void OnHost(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<std::shared_ptr<HostLookup>> ref(
      static_cast<std::shared_ptr<HostLookup>*>(arg));
  std::unique_ptr<ares_addrinfo, AddrinfoDeleter> owned(result);
  HostLookup& q = **ref;
  if (status != ARES_SUCCESS) return q.Finish(LookupError(status, "A/AAAA", q.name()));
  std::vector<IpAddress> v6, v4;
  for (ares_addrinfo_node* n = result != nullptr ? result->nodes : nullptr; n != nullptr;
       n = n->ai_next) {
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
  std::vector<IpAddress> addresses;
  for (auto* list : {&v6, &v4}) {
    for (const IpAddress& a : *list) {
      if (std::find(addresses.begin(), addresses.end(), a) == addresses.end()) {
        addresses.push_back(a);
      }
    }
  }
  if (addresses.empty()) return q.Finish(LookupError(ARES_ENODATA, "A/AAAA", q.name()));
  q.Finish(std::move(addresses));
}

}  // namespace

CaresResolver::CaresResolver(FetchEngine& engine,
                             std::map<std::string, std::vector<IpAddress>> overrides)
    : engine_(engine), overrides_(std::move(overrides)) {}

CaresResolver::~CaresResolver() = default;

absl::StatusOr<std::unique_ptr<CaresResolver>> CaresResolver::Create(
    FetchEngine& engine, const Options& options) {
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
  // The server list is checked here, once, so a typo stops the start rather
  // than every lookup.
  if (absl::Status s = engine.ConfigureDns(options.servers, options.query_timeout,
                                           options.tries);
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<CaresResolver>(new CaresResolver(engine, std::move(overrides)));
}

void CaresResolver::LookupSrv(absl::string_view name, absl::Time deadline,
                              async::Callback<std::vector<SrvRecord>> done) {
  auto q = std::make_shared<SrvLookup>(engine_, std::string(name),
                                       absl::StrCat("SRV lookup of ", name), std::move(done));
  Start(engine_, q, deadline, [q](ares_channel channel, void* arg) {
    ares_query(channel, q->name().c_str(), ns_c_in, ns_t_srv, OnSrv, arg);
  });
}

void CaresResolver::LookupHost(absl::string_view host, absl::Time deadline,
                               async::Callback<std::vector<IpAddress>> done) {
  if (auto it = overrides_.find(Lower(host)); it != overrides_.end()) {
    done(it->second);
    return;
  }
  auto q = std::make_shared<HostLookup>(engine_, std::string(host),
                                        absl::StrCat("address lookup of ", host),
                                        std::move(done));
  Start(engine_, q, deadline, [q](ares_channel channel, void* arg) {
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(channel, q->name().c_str(), nullptr, &hints, OnHost, arg);
  });
}

}  // namespace keyverifier::net
