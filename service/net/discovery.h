// ServerDiscovery: where to connect for a Matrix server name, with which
// Host header and for which certificate name (server-server API, "Resolving
// server names").
//
// The order is the spec's: IP literal; hostname with explicit port;
// /.well-known/matrix/server delegation (then the same steps for the
// delegated name, with SRV); SRV _matrix-fed._tcp, then the deprecated
// _matrix._tcp; A/AAAA on port 8448. The certificate must be valid for the
// server name or the delegated name, never an SRV target. Every resolved
// address passes the IpFilter; refused ones are dropped, and a name whose
// addresses are all refused fails with PermissionDeniedError saying why.
//
// .well-known answers are cached per hostname: valid ones per their
// Cache-Control (24 h default, 48 h at most), failures with exponential
// backoff up to an hour. The .well-known request has its own time budget; a
// lookup cut short by the caller's deadline is not a failure of the host and
// is never cached.
//
// Lookups run in one of two lanes by priority: a single caller's
// (kInteractive) and batches' (kBulk), each with its own resolver and
// .well-known fetcher, which the service runs on fetch engines of their own,
// so that a single lookup never waits behind a batch's thousands of lookups
// and handshakes on one busy loop. The .well-known cache is shared.
//
// Asynchronous: Resolve returns at once; its callback runs once, on the
// thread that completed the last lookup (or inline for cached and literal
// answers). Independent lookups (the targets of several SRV records) run
// concurrently.
//
// Thread-safe; the resolver, fetcher, filter and clock are borrowed and must
// outlive it. Errors: NotFoundError when the name has no addresses, UnavailableError when DNS
// failed, PermissionDeniedError as above, DeadlineExceededError.
#ifndef KEYVERIFIER_SERVICE_NET_DISCOVERY_H_
#define KEYVERIFIER_SERVICE_NET_DISCOVERY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
#include "service/clock/clock.h"
#include "service/core/server_name.h"
#include "service/net/ip_filter.h"
#include "service/net/resolver.h"
#include "service/net/well_known.h"

namespace keyverifier::net {

// Who is waiting: a single caller, or a batch (a VerifyEvents of many
// servers, the refresher), which gets the lanes and connections left over.
enum class Priority { kInteractive, kBulk };

struct Endpoint {
  IpAddress address;
  uint16_t port = 0;
  std::string ToString() const;  // "192.0.2.1:8448", "[2001:db8::1]:8448"
};

struct ResolvedServer {
  std::string server_name;
  std::string host_header;  // the Host header to send
  std::string tls_name;     // the name the certificate must be valid for
  bool send_sni = true;     // false when tls_name is an IP literal
  std::vector<Endpoint> endpoints;  // in the order to try
  // How the answer was found, for operators ("well-known -> b.example:443").
  std::string route;
};

// A plain HTTP answer: enough for the .well-known step.
struct WellKnownResponse {
  int status = 0;
  std::string body;
  std::string cache_control;
};

// GET https://<hostname>/.well-known/matrix/server (redirects followed, size
// limited, the address filter applied). A transport failure is an error
// status; an HTTP error is a response with that status.
class WellKnownFetcher {
 public:
  virtual ~WellKnownFetcher() = default;
  virtual void Fetch(absl::string_view hostname, absl::Time deadline,
                     async::Callback<WellKnownResponse> done) = 0;
};

class ServerDiscovery {
 public:
  struct Options {
    CachePolicy well_known_cache;
    // Backoff for a hostname whose .well-known failed: first, then doubling
    // up to the maximum.
    absl::Duration failure_backoff_initial = absl::Minutes(2);
    absl::Duration failure_backoff_max = absl::Hours(1);
    // Entries kept in the .well-known cache at most; beyond it, the expired
    // and then the least recently used leave.
    size_t max_cached_hosts = 100000;
    // Time budget of one .well-known lookup (redirects included).
    absl::Duration well_known_timeout = absl::Seconds(10);
  };

  // Where the lookups of one priority run.
  struct Lane {
    Resolver* resolver;
    WellKnownFetcher* well_known;
  };
  // One lane for both priorities.
  ServerDiscovery(Resolver& resolver, WellKnownFetcher& well_known,
                  const IpFilter& filter, const Clock& clock, Options options);
  ServerDiscovery(Lane bulk, Lane interactive, const IpFilter& filter, const Clock& clock,
                  Options options);

  void Resolve(const core::ServerName& server_name, absl::Time deadline,
               async::Callback<ResolvedServer> done,
               Priority priority = Priority::kInteractive);
  // Blocking form, for tools and tests.
  absl::StatusOr<ResolvedServer> ResolveAndWait(const core::ServerName& server_name,
                                                absl::Time deadline) {
    return async::Wait<ResolvedServer>(
        [&](auto cb) { Resolve(server_name, deadline, std::move(cb)); });
  }

 private:
  struct Job;
  struct WellKnownEntry {
    std::optional<core::ServerName> delegated;  // nullopt: the lookup failed
    std::string error;
    absl::Time expires;
    absl::Time last_used;  // asked for or stored: the cache keeps the most recent
    int failures = 0;  // consecutive
  };

  // The delegated server name, or nullopt when .well-known gives none, with
  // a note for the route; an error only when the caller's deadline passed.
  struct Delegated {
    std::optional<core::ServerName> name;
    std::string note;
  };
  void Delegation(const std::string& hostname, absl::Time deadline, const Lane& lane,
                  async::Callback<Delegated> done);
  // SRV (_matrix-fed, then _matrix) or A/AAAA on 8448 for the job's host.
  void ResolveWithSrv(std::shared_ptr<Job> job, const std::string& host, int service);
  void AddHost(std::shared_ptr<Job> job, const std::string& host, uint16_t port);
  void Finish(std::shared_ptr<Job> job, absl::Status status);
  void CacheWellKnown(const std::string& hostname, WellKnownEntry entry, absl::Time now);
  absl::Status Filter(ResolvedServer* out) const;

  const Lane bulk_;
  const Lane interactive_;
  const IpFilter& filter_;
  const Clock& clock_;
  const Options options_;

  absl::Mutex mu_;
  std::map<std::string, WellKnownEntry> well_known_cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_DISCOVERY_H_
