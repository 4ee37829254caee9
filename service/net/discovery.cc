#include "service/net/discovery.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/clock/backoff.h"
#include "service/core/server_name.h"

namespace keyverifier::net {
namespace {

constexpr uint16_t kDefaultPort = 8448;

bool IsIp(const core::ServerName& n) {
  return n.kind != core::ServerName::HostKind::kDnsName;
}

}  // namespace

std::string Endpoint::ToString() const {
  return HostPort(address.ToString(), port);
}

ServerDiscovery::ServerDiscovery(Resolver& resolver, WellKnownFetcher& well_known,
                                 const IpFilter& filter, const Clock& clock,
                                 Options options)
    : resolver_(resolver),
      well_known_(well_known),
      filter_(filter),
      clock_(clock),
      options_(std::move(options)) {}

absl::Status ServerDiscovery::AddHost(const std::string& host, uint16_t port,
                                      absl::Time deadline, ResolvedServer* out) {
  absl::StatusOr<std::vector<IpAddress>> addresses = resolver_.LookupHost(host, deadline);
  if (!addresses.ok()) return addresses.status();
  for (const IpAddress& a : *addresses) out->endpoints.push_back({a, port});
  return absl::OkStatus();
}

absl::Status ServerDiscovery::ResolveWithSrv(const std::string& host,
                                             absl::Time deadline,
                                             ResolvedServer* out) {
  for (absl::string_view service : {"_matrix-fed._tcp.", "_matrix._tcp."}) {
    const std::string name = absl::StrCat(service, host);
    absl::StatusOr<std::vector<SrvRecord>> records = resolver_.LookupSrv(name, deadline);
    if (absl::IsNotFound(records.status())) continue;
    if (!records.ok()) return records.status();
    // RFC 2782: a lone "." target means the service is decidedly not there.
    if (records->size() == 1 && (*records)[0].target.empty()) {
      return absl::NotFoundError(absl::StrCat(name, " says the service is not available"));
    }
    // Lowest priority first; within a priority the heavier first, so the
    // order (and what tests see) is deterministic.
    std::stable_sort(records->begin(), records->end(),
                     [](const SrvRecord& a, const SrvRecord& b) {
                       return a.priority != b.priority ? a.priority < b.priority
                                                       : a.weight > b.weight;
                     });
    std::vector<std::string> failures;
    for (const SrvRecord& r : *records) {
      if (r.target.empty()) continue;
      absl::Status s = AddHost(r.target, r.port, deadline, out);
      if (absl::IsDeadlineExceeded(s)) return s;
      if (!s.ok()) failures.push_back(std::string(s.message()));
    }
    absl::StrAppend(&out->route, " -> SRV ", name);
    if (out->endpoints.empty()) {
      return absl::NotFoundError(absl::StrCat("no SRV target of ", name, " resolved: ",
                                              absl::StrJoin(failures, "; ")));
    }
    return absl::OkStatus();
  }
  absl::StrAppend(&out->route, " -> ", host, ":", kDefaultPort);
  return AddHost(host, kDefaultPort, deadline, out);
}

std::optional<std::string> ServerDiscovery::Delegation(const std::string& hostname,
                                                       absl::Time deadline,
                                                       std::string* note) {
  const absl::Time now = clock_.Now();
  int failures = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = well_known_cache_.find(hostname);
    if (it != well_known_cache_.end()) {
      if (it->second.expires > now) {
        *note = it->second.delegated ? "well-known (cached)"
                                     : absl::StrCat("no well-known (cached: ",
                                                    it->second.error, ")");
        return it->second.delegated;
      }
      failures = it->second.failures;
    }
  }
  WellKnownEntry entry;
  absl::StatusOr<WellKnownResponse> r = well_known_.Fetch(hostname, deadline);
  if (!r.ok()) {
    entry.error = std::string(r.status().message());
  } else if (r->status != 200) {
    entry.error = absl::StrCat("HTTP ", r->status);
  } else {
    absl::StatusOr<std::string> delegated = ParseWellKnownBody(r->body);
    if (delegated.ok()) {
      entry.delegated = *delegated;
      entry.expires = now + WellKnownCacheTime(r->cache_control, options_.well_known_cache);
    } else {
      entry.error = std::string(delegated.status().message());
    }
  }
  if (!entry.delegated) {
    entry.failures = failures + 1;
    entry.expires = now + Backoff(entry.failures, options_.failure_backoff_initial,
                                  options_.failure_backoff_max);
    *note = absl::StrCat("no well-known (", entry.error, ")");
  } else {
    *note = "well-known";
  }
  {
    absl::MutexLock lock(&mu_);
    if (well_known_cache_.size() >= options_.max_cached_hosts) {
      // Drop what has expired; if nothing has, drop everything rather than
      // grow without bound (the cache only saves lookups).
      for (auto it = well_known_cache_.begin(); it != well_known_cache_.end();) {
        it = it->second.expires <= now ? well_known_cache_.erase(it) : std::next(it);
      }
      if (well_known_cache_.size() >= options_.max_cached_hosts) well_known_cache_.clear();
    }
    well_known_cache_[hostname] = entry;
  }
  return entry.delegated;
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

absl::StatusOr<ResolvedServer> ServerDiscovery::Resolve(absl::string_view server_name,
                                                        absl::Time deadline) {
  absl::StatusOr<core::ServerName> name = core::ParseServerName(server_name);
  if (!name.ok()) return name.status();
  ResolvedServer out;
  out.server_name = std::string(server_name);
  const std::string host = absl::AsciiStrToLower(name->host);

  auto finish = [&](absl::Status s) -> absl::StatusOr<ResolvedServer> {
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat(server_name, " (", out.route, "): ",
                                                 s.message()));
    }
    if (absl::Status f = Filter(&out); !f.ok()) return f;
    return out;
  };

  // 1. IP literal.
  if (IsIp(*name)) {
    out.host_header = out.server_name;
    out.tls_name = name->host;
    out.send_sni = false;
    out.route = "IP literal";
    absl::StatusOr<IpAddress> ip = ParseIpAddress(name->host);
    if (!ip.ok()) return ip.status();
    out.endpoints.push_back({*ip, name->port.value_or(kDefaultPort)});
    return finish(absl::OkStatus());
  }
  // 2. Hostname with an explicit port.
  if (name->port) {
    out.host_header = out.server_name;
    out.tls_name = host;
    out.route = "explicit port";
    return finish(AddHost(host, *name->port, deadline, &out));
  }
  // 3. .well-known delegation.
  std::string note;
  std::optional<std::string> delegated = Delegation(host, deadline, &note);
  out.route = note;
  if (delegated) {
    absl::StatusOr<core::ServerName> d = core::ParseServerName(*delegated);
    if (!d.ok()) return d.status();  // ParseWellKnownBody checked it already
    const std::string dhost = absl::AsciiStrToLower(d->host);
    absl::StrAppend(&out.route, " -> ", *delegated);
    if (IsIp(*d)) {
      // 3.1: the Host header is the IP (and port, if given).
      out.host_header = *delegated;
      out.tls_name = d->host;
      out.send_sni = false;
      absl::StatusOr<IpAddress> ip = ParseIpAddress(d->host);
      if (!ip.ok()) return ip.status();
      out.endpoints.push_back({*ip, d->port.value_or(kDefaultPort)});
      return finish(absl::OkStatus());
    }
    out.tls_name = dhost;
    if (d->port) {
      // 3.2
      out.host_header = *delegated;
      return finish(AddHost(dhost, *d->port, deadline, &out));
    }
    // 3.3 - 3.5
    out.host_header = dhost;
    return finish(ResolveWithSrv(dhost, deadline, &out));
  }
  // 4 - 6.
  out.host_header = host;
  out.tls_name = host;
  return finish(ResolveWithSrv(host, deadline, &out));
}

}  // namespace keyverifier::net
