#include "service/net/cares_resolver.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/async/limiter.h"

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

}  // namespace

// At most `max` queries with c-ares at once; the others wait in order. A
// burst of thousands of lookups would otherwise overflow the DNS server's
// (or our socket's) queue and turn into timeouts and retries.
class CaresResolver::Gate {
 public:
  Gate(FetchEngine& engine, int max) : engine_(engine), slots_(max) {}

  // Runs `issue` on the loop now or once a slot is free; it must call
  // Release exactly once, when its query is over.
  void Admit(async::Task issue) {
    if (!slots_.Acquire(issue)) return;  // queued
    if (!engine_.Post(std::move(issue))) Release();  // stopped: the timer answers
  }
  // A query is over: the next waiting one (if any) takes its slot. Posted,
  // never run here, so a chain of releases cannot grow the stack; when the
  // engine has stopped, the waiting lookups' timers answer them.
  void Release() {
    while (async::Task next = slots_.Release()) {
      if (engine_.Post(std::move(next))) return;
    }
  }

 private:
  FetchEngine& engine_;
  async::Limiter slots_;
};

namespace {

// One lookup in flight. Shared by the c-ares query and the deadline timer:
// whichever finishes first answers, the other finds it done and only lets
// go of its reference.
template <typename T>
class Lookup {
 public:
  Lookup(FetchEngine& engine, std::shared_ptr<CaresResolver::Gate> gate, std::string name,
         std::string what, async::Callback<T> done)
      : engine_(engine), gate_(std::move(gate)), name_(std::move(name)), what_(std::move(what)),
        done_(std::move(done)) {}

  CaresResolver::Gate& gate() { return *gate_; }

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
  const std::shared_ptr<CaresResolver::Gate> gate_;
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
  q->gate().Admit([&engine, q, issue = std::move(issue)]() mutable {
    engine.WithDns([q, issue = std::move(issue)](void* channel) mutable {
      if (channel == nullptr) {
        q->Finish(absl::CancelledError(absl::StrCat(q->what(), ": the fetch engine stopped")));
        q->gate().Release();
        return;
      }
      if (q->finished()) {  // the deadline passed while it waited
        q->gate().Release();
        return;
      }
      issue(static_cast<ares_channel>(channel), new std::shared_ptr<Lookup<T>>(q));
    });
  });
}

void OnSrv(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<std::shared_ptr<SrvLookup>> ref(static_cast<std::shared_ptr<SrvLookup>*>(arg));
  SrvLookup& q = **ref;
  q.gate().Release();
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
  q.gate().Release();
  if (status != ARES_SUCCESS) return q.Finish(LookupError(status, "A/AAAA", q.name()));
  std::vector<IpAddress> v6, v4;
  for (ares_addrinfo_node* n = result != nullptr ? result->nodes : nullptr; n != nullptr;
       n = n->ai_next) {
    // An AAAA record ::ffff:a.b.c.d comes as IPv4 a.b.c.d: it reaches the
    // same host, and the filter's IPv4 rules must judge it.
    std::optional<IpAddress> a = IpAddress::FromSockaddr(n->ai_addr, n->ai_addrlen);
    if (a) (a->v4 ? v4 : v6).push_back(*a);
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

using CnameLookup = Lookup<std::vector<std::string>>;

void OnCnames(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<std::shared_ptr<CnameLookup>> ref(
      static_cast<std::shared_ptr<CnameLookup>*>(arg));
  std::unique_ptr<ares_addrinfo, AddrinfoDeleter> owned(result);
  CnameLookup& q = **ref;
  q.gate().Release();
  if (status != ARES_SUCCESS) return q.Finish(LookupError(status, "A/AAAA", q.name()));
  std::vector<std::string> chain;
  for (ares_addrinfo_cname* c = result != nullptr ? result->cnames : nullptr; c != nullptr;
       c = c->next) {
    std::string link = absl::StrCat(c->alias != nullptr ? c->alias : "", " -> ",
                                    c->name != nullptr ? c->name : "");
    // AAAA and A answers each carry the chain: list it once.
    if (std::find(chain.begin(), chain.end(), link) == chain.end()) chain.push_back(link);
  }
  q.Finish(std::move(chain));
}

}  // namespace

CaresResolver::CaresResolver(FetchEngine& engine,
                             std::map<std::string, std::vector<IpAddress>> overrides,
                             int max_in_flight)
    : engine_(engine),
      overrides_(std::move(overrides)),
      gate_(std::make_shared<Gate>(engine, max_in_flight)) {}

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
                                           options.tries, options.resolv_conf);
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<CaresResolver>(
      new CaresResolver(engine, std::move(overrides), options.max_in_flight));
}

// Lookups of one name (and type) in flight: the first caller's query
// answers every caller who joined it, provided their deadline is no earlier
// than its own (one who must know sooner asks on its own).
template <typename T>
struct CaresResolver::InFlight {
  absl::Time deadline;
  std::vector<async::Callback<T>> callers;
};

template <typename T>
bool CaresResolver::Join(absl::flat_hash_map<std::string, std::shared_ptr<InFlight<T>>>& map,
                         const std::string& key, absl::Time deadline, async::Callback<T>& done,
                         std::shared_ptr<InFlight<T>>* lead) {
  absl::MutexLock lock(&mu_);
  auto it = map.find(key);
  if (it != map.end()) {
    if (deadline < it->second->deadline) return false;  // asks on its own
    it->second->callers.push_back(std::move(done));
    return true;
  }
  auto shared = std::make_shared<InFlight<T>>();
  shared->deadline = deadline;
  shared->callers.push_back(std::move(done));
  map.emplace(key, shared);
  *lead = std::move(shared);
  return false;
}

template <typename T>
async::Callback<T> CaresResolver::AnswerAll(
    absl::flat_hash_map<std::string, std::shared_ptr<InFlight<T>>>& map, std::string key,
    std::shared_ptr<InFlight<T>> lead) {
  return [this, &map, key = std::move(key), lead = std::move(lead)](absl::StatusOr<T> r) {
    std::vector<async::Callback<T>> callers;
    {
      absl::MutexLock lock(&mu_);
      auto it = map.find(key);
      if (it != map.end() && it->second == lead) map.erase(it);
      callers = std::move(lead->callers);
    }
    for (async::Callback<T>& c : callers) c(r);
  };
}

void CaresResolver::LookupSrv(absl::string_view name, absl::Time deadline,
                              async::Callback<std::vector<SrvRecord>> done) {
  const std::string key = Lower(name);
  std::shared_ptr<InFlight<std::vector<SrvRecord>>> lead;
  if (Join(srv_in_flight_, key, deadline, done, &lead)) return;
  if (lead != nullptr) done = AnswerAll(srv_in_flight_, key, std::move(lead));
  auto q = std::make_shared<SrvLookup>(engine_, gate_, std::string(name),
                                       absl::StrCat("SRV lookup of ", name), std::move(done));
  Start(engine_, q, deadline, [q](ares_channel channel, void* arg) {
    ares_query(channel, q->name().c_str(), ns_c_in, ns_t_srv, OnSrv, arg);
  });
}

void CaresResolver::LookupHost(absl::string_view host, absl::Time deadline,
                               async::Callback<std::vector<IpAddress>> done) {
  const std::string key = Lower(host);
  if (auto it = overrides_.find(key); it != overrides_.end()) {
    done(it->second);
    return;
  }
  std::shared_ptr<InFlight<std::vector<IpAddress>>> lead;
  if (Join(host_in_flight_, key, deadline, done, &lead)) return;
  if (lead != nullptr) done = AnswerAll(host_in_flight_, key, std::move(lead));
  auto q = std::make_shared<HostLookup>(engine_, gate_, std::string(host),
                                        absl::StrCat("address lookup of ", host),
                                        std::move(done));
  Start(engine_, q, deadline, [q](ares_channel channel, void* arg) {
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(channel, q->name().c_str(), nullptr, &hints, OnHost, arg);
  });
}

void CaresResolver::LookupCnames(absl::string_view host, absl::Time deadline,
                                 async::Callback<std::vector<std::string>> done) {
  if (overrides_.count(Lower(host)) != 0) return done(std::vector<std::string>{});
  auto q = std::make_shared<CnameLookup>(engine_, gate_, std::string(host),
                                         absl::StrCat("CNAME lookup of ", host), std::move(done));
  Start(engine_, q, deadline, [q](ares_channel channel, void* arg) {
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT | ARES_AI_CANONNAME;
    ares_getaddrinfo(channel, q->name().c_str(), nullptr, &hints, OnCnames, arg);
  });
}

}  // namespace keyverifier::net
