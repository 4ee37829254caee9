#include "service/net/discovery.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/clock/backoff.h"
#include "service/core/server_name.h"

namespace keyverifier::net {
namespace {

constexpr uint16_t kDefaultPort = 8448;

}  // namespace

std::string Endpoint::ToString() const {
  return HostPort(address.ToString(), port);
}

ServerDiscovery::ServerDiscovery(Resolver& resolver, WellKnownFetcher& well_known,
                                 const IpFilter& filter, const Clock& clock,
                                 Options options)
    : ServerDiscovery(Lane{&resolver, &well_known}, Lane{&resolver, &well_known}, filter, clock,
                      std::move(options)) {}

ServerDiscovery::ServerDiscovery(Lane bulk, Lane interactive, const IpFilter& filter,
                                 const Clock& clock, Options options)
    : bulk_(bulk),
      interactive_(interactive),
      filter_(filter),
      clock_(clock),
      options_(std::move(options)) {}

// One resolution in progress; shared by the continuations of its lookups.
struct ServerDiscovery::Job {
  std::string server_name;
  absl::Time deadline;
  const Lane* lane = nullptr;
  ResolvedServer out;
  async::Callback<ResolvedServer> done;
};

void ServerDiscovery::AddHost(std::shared_ptr<Job> job, const std::string& host,
                              uint16_t port) {
  const absl::Time deadline = job->deadline;
  job->lane->resolver->LookupHost(
      host, deadline,
      [this, job = std::move(job), port](absl::StatusOr<std::vector<IpAddress>> addresses) {
        if (!addresses.ok()) return Finish(job, addresses.status());
        for (const IpAddress& a : *addresses) job->out.endpoints.push_back({a, port});
        Finish(job, absl::OkStatus());
      });
}

namespace {
constexpr absl::string_view kSrvServices[] = {"_matrix-fed._tcp.", "_matrix._tcp."};

// The addresses of several SRV targets, looked up concurrently and joined in
// the records' order.
struct SrvTargets {
  absl::Mutex mu;
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::vector<Endpoint>> endpoints ABSL_GUARDED_BY(mu);
  std::vector<std::string> failures ABSL_GUARDED_BY(mu);
  bool deadline_hit ABSL_GUARDED_BY(mu) = false;
};
}  // namespace

void ServerDiscovery::ResolveWithSrv(std::shared_ptr<Job> job, const std::string& host,
                                     int service) {
  if (service >= static_cast<int>(std::size(kSrvServices))) {
    absl::StrAppend(&job->out.route, " -> ", host, ":", kDefaultPort);
    return AddHost(std::move(job), host, kDefaultPort);
  }
  const std::string name = absl::StrCat(kSrvServices[service], host);
  const absl::Time deadline = job->deadline;
  job->lane->resolver->LookupSrv(name, deadline, [this, job, host, service, name](
                                          absl::StatusOr<std::vector<SrvRecord>> records) {
    if (absl::IsNotFound(records.status())) return ResolveWithSrv(job, host, service + 1);
    if (!records.ok()) return Finish(job, records.status());
    // RFC 2782: a lone "." target means the service is decidedly not there.
    if (records->size() == 1 && (*records)[0].target.empty()) {
      return Finish(job, absl::NotFoundError(
                             absl::StrCat(name, " says the service is not available")));
    }
    // Lowest priority first; within a priority the heavier first, so the
    // order (and what tests see) is deterministic.
    std::stable_sort(records->begin(), records->end(),
                     [](const SrvRecord& a, const SrvRecord& b) {
                       return a.priority != b.priority ? a.priority < b.priority
                                                       : a.weight > b.weight;
                     });
    records->erase(std::remove_if(records->begin(), records->end(),
                                  [](const SrvRecord& r) { return r.target.empty(); }),
                   records->end());
    absl::StrAppend(&job->out.route, " -> SRV ", name);
    if (records->empty()) {
      return Finish(job, absl::NotFoundError(absl::StrCat(name, " has no usable target")));
    }
    auto targets = std::make_shared<SrvTargets>();
    {
      absl::MutexLock lock(&targets->mu);
      targets->pending = records->size();
      targets->endpoints.resize(records->size());
    }
    auto joined = [this, job, targets, name] {
      absl::MutexLock lock(&targets->mu);
      if (targets->deadline_hit) {
        return absl::DeadlineExceededError(
            absl::StrCat("deadline passed resolving the SRV targets of ", name));
      }
      for (const std::vector<Endpoint>& e : targets->endpoints) {
        job->out.endpoints.insert(job->out.endpoints.end(), e.begin(), e.end());
      }
      if (job->out.endpoints.empty()) {
        return absl::NotFoundError(absl::StrCat("no SRV target of ", name, " resolved: ",
                                                absl::StrJoin(targets->failures, "; ")));
      }
      return absl::OkStatus();
    };
    for (size_t i = 0; i < records->size(); ++i) {
      const SrvRecord& r = (*records)[i];
      job->lane->resolver->LookupHost(
          r.target, job->deadline,
          [this, job, targets, joined, i, port = r.port](
              absl::StatusOr<std::vector<IpAddress>> addresses) {
            bool last = false;
            {
              absl::MutexLock lock(&targets->mu);
              if (addresses.ok()) {
                for (const IpAddress& a : *addresses) targets->endpoints[i].push_back({a, port});
              } else {
                targets->deadline_hit |= absl::IsDeadlineExceeded(addresses.status());
                targets->failures.push_back(std::string(addresses.status().message()));
              }
              last = --targets->pending == 0;
            }
            if (last) Finish(job, joined());
          });
    }
  });
}

void ServerDiscovery::CacheWellKnown(const std::string& hostname, WellKnownEntry entry,
                                     absl::Time now) {
  absl::MutexLock lock(&mu_);
  entry.last_used = now;
  if (well_known_cache_.count(hostname) == 0 &&
      well_known_cache_.size() >= options_.max_cached_hosts) {
    // Full: what has expired goes, and if that is not 1% of the bound, the
    // least recently used go too (a flood of new names pushes out neither
    // more nor less than that, and costs amortised constant time).
    const size_t target =
        options_.max_cached_hosts - std::max<size_t>(1, options_.max_cached_hosts / 100);
    for (auto it = well_known_cache_.begin(); it != well_known_cache_.end();) {
      it = it->second.expires <= now ? well_known_cache_.erase(it) : std::next(it);
    }
    if (well_known_cache_.size() > target) {
      std::vector<std::pair<absl::Time, std::string>> by_use;
      by_use.reserve(well_known_cache_.size());
      for (const auto& [host, e] : well_known_cache_) by_use.push_back({e.last_used, host});
      const size_t drop = well_known_cache_.size() - target;
      std::nth_element(by_use.begin(), by_use.begin() + (drop - 1), by_use.end());
      for (size_t i = 0; i < drop; ++i) well_known_cache_.erase(by_use[i].second);
    }
  }
  well_known_cache_[hostname] = std::move(entry);
}

void ServerDiscovery::Delegation(const std::string& hostname, absl::Time deadline,
                                 const Lane& lane, async::Callback<Delegated> done) {
  const absl::Time now = clock_.Now();
  int failures = 0;
  std::optional<Delegated> cached;
  {
    absl::MutexLock lock(&mu_);
    auto it = well_known_cache_.find(hostname);
    if (it != well_known_cache_.end()) {
      it->second.last_used = now;
      if (it->second.expires > now) {
        cached = Delegated{it->second.delegated,
                           it->second.delegated ? "well-known (cached)"
                                                : absl::StrCat("no well-known (cached: ",
                                                               it->second.error, ")")};
      }
      failures = it->second.failures;
    }
  }
  if (cached) return done(*std::move(cached));
  // Its own budget: a host slow to answer .well-known is a failure of that
  // host (cached, backed off); the caller's deadline is not.
  const absl::Time own_deadline = now + options_.well_known_timeout;
  const bool caller_sets_deadline = deadline < own_deadline;
  lane.well_known->Fetch(
      hostname, std::min(deadline, own_deadline),
      [this, hostname, failures, now, caller_sets_deadline,
       done = std::move(done)](absl::StatusOr<WellKnownResponse> r) mutable {
        if (!r.ok() && (absl::IsCancelled(r.status()) ||
                        (caller_sets_deadline && absl::IsDeadlineExceeded(r.status())))) {
          // Cut short by the caller or by shutdown: says nothing about the host.
          done(r.status());
          return;
        }
        WellKnownEntry entry;
        if (!r.ok()) {
          entry.error = std::string(r.status().message());
        } else if (r->status != 200) {
          entry.error = absl::StrCat("HTTP ", r->status);
        } else {
          absl::StatusOr<core::ServerName> delegated = ParseWellKnownBody(r->body);
          if (delegated.ok()) {
            entry.delegated = *delegated;
            entry.expires = now + WellKnownCacheTime(r->cache_control, options_.well_known_cache);
          } else {
            entry.error = std::string(delegated.status().message());
          }
        }
        Delegated d;
        if (!entry.delegated) {
          entry.failures = failures + 1;
          entry.expires = now + Backoff(entry.failures, options_.failure_backoff_initial,
                                        options_.failure_backoff_max);
          d.note = absl::StrCat("no well-known (", entry.error, ")");
        } else {
          d.note = "well-known";
        }
        d.name = entry.delegated;
        CacheWellKnown(hostname, std::move(entry), now);
        done(std::move(d));
      });
}

absl::Status ServerDiscovery::Filter(ResolvedServer* out) const {
  std::vector<std::string> refused;
  std::vector<Endpoint> kept;
  for (const Endpoint& e : out->endpoints) {
    if (std::find_if(kept.begin(), kept.end(), [&](const Endpoint& k) {
          return k.address == e.address && k.port == e.port;
        }) != kept.end()) {
      continue;
    }
    if (std::optional<std::string> why = filter_.Refusal(e.address)) {
      refused.push_back(*std::move(why));
    } else {
      kept.push_back(e);
    }
  }
  out->endpoints = std::move(kept);
  if (out->endpoints.empty()) {
    if (!refused.empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          out->server_name, ": every address is refused by the outbound address filter (",
          absl::StrJoin(refused, "; "), ")"));
    }
    return absl::NotFoundError(absl::StrCat(out->server_name, ": no addresses"));
  }
  return absl::OkStatus();
}

void ServerDiscovery::Finish(std::shared_ptr<Job> job, absl::Status s) {
  if (!s.ok()) {
    job->done(absl::Status(s.code(), absl::StrCat(job->server_name, " (", job->out.route,
                                                  "): ", s.message())));
    return;
  }
  if (absl::Status f = Filter(&job->out); !f.ok()) {
    job->done(f);
    return;
  }
  job->done(std::move(job->out));
}

void ServerDiscovery::Resolve(const core::ServerName& name, absl::Time deadline,
                              async::Callback<ResolvedServer> done, Priority priority) {
  auto job = std::make_shared<Job>();
  job->server_name = name.str();
  job->deadline = deadline;
  job->lane = priority == Priority::kBulk ? &bulk_ : &interactive_;
  job->done = std::move(done);
  ResolvedServer& out = job->out;
  out.server_name = name.str();
  const std::string host = absl::AsciiStrToLower(name.host());

  // 1. IP literal.
  if (name.is_ip_literal()) {
    out.host_header = out.server_name;
    out.tls_name = std::string(name.host());
    out.send_sni = false;
    out.route = "IP literal";
    absl::StatusOr<IpAddress> ip = ParseIpAddress(name.host());
    if (!ip.ok()) return job->done(ip.status());
    out.endpoints.push_back({*ip, name.port().value_or(kDefaultPort)});
    return Finish(std::move(job), absl::OkStatus());
  }
  // 2. Hostname with an explicit port.
  if (name.port()) {
    out.host_header = out.server_name;
    out.tls_name = host;
    out.route = "explicit port";
    return AddHost(std::move(job), host, *name.port());
  }
  // 3. .well-known delegation.
  Delegation(host, deadline, *job->lane, [this, job, host](absl::StatusOr<Delegated> delegation) {
    if (!delegation.ok()) {
      job->out.route = "well-known";
      return Finish(job, delegation.status());
    }
    ResolvedServer& out = job->out;
    out.route = delegation->note;
    if (!delegation->name) {
      // 4 - 6.
      out.host_header = host;
      out.tls_name = host;
      return ResolveWithSrv(job, host, 0);
    }
    const core::ServerName& d = *delegation->name;
    const std::string dhost = absl::AsciiStrToLower(d.host());
    absl::StrAppend(&out.route, " -> ", d.view());
    if (d.is_ip_literal()) {
      // 3.1: the Host header is the IP (and port, if given).
      out.host_header = d.str();
      out.tls_name = std::string(d.host());
      out.send_sni = false;
      absl::StatusOr<IpAddress> ip = ParseIpAddress(d.host());
      if (!ip.ok()) return job->done(ip.status());
      out.endpoints.push_back({*ip, d.port().value_or(kDefaultPort)});
      return Finish(job, absl::OkStatus());
    }
    out.tls_name = dhost;
    if (d.port()) {
      // 3.2
      out.host_header = d.str();
      return AddHost(job, dhost, *d.port());
    }
    // 3.3 - 3.5
    out.host_header = dhost;
    ResolveWithSrv(job, dhost, 0);
  });
}

}  // namespace keyverifier::net
