// CaresResolver: Resolver over c-ares, on the FetchEngine's one channel
// (c-ares channels are not thread-safe: every query is issued and answered
// on the engine's loop, which drives the channel's sockets and timeouts).
//
// Options name the DNS servers to ask ("127.0.0.1:5353,[::1]:53"; empty: the
// system's /etc/resolv.conf) and static host overrides that answer LookupHost
// without DNS (for operators pinning a server, and for tests; answered
// inline). /etc/hosts is not consulted when servers are given, so answers
// come from those servers alone. The options configure the engine's channel
// (FetchEngine::ConfigureDns): one CaresResolver per engine.
//
// Names are absolute: resolv.conf's search domains and ndots are not
// applied, so "matrix.org" is asked as matrix.org and nothing else (in
// Kubernetes, ndots:5 would otherwise ask matrix.org.<ns>.svc.cluster.local
// first).
//
// Answers are IpAddress values as IpAddress::FromSockaddr builds them: an
// AAAA record ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
//
// Each lookup's deadline is an engine timer: when it fires first, the
// callback gets DeadlineExceededError and the late c-ares answer is dropped.
//
// Concurrent lookups of one name share one query (a batch of servers often
// shares SRV targets), and at most max_in_flight queries are out at once.
//
// Thread-safe. Create fails with InvalidArgumentError for a bad server list
// or override. The engine is borrowed and must outlive the resolver; a
// lookup in flight keeps what it needs alive itself.
#ifndef KEYVERIFIER_SERVICE_NET_CARES_RESOLVER_H_
#define KEYVERIFIER_SERVICE_NET_CARES_RESOLVER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/net/fetch_engine.h"
#include "service/net/resolver.h"

namespace keyverifier::net {

class CaresResolver final : public Resolver {
 public:
  struct Options {
    std::string servers;  // c-ares CSV "host[:port],..."; empty: system config
    // The resolv.conf to read instead of /etc/resolv.conf (tests); empty:
    // the system's.
    std::string resolv_conf;
    // host -> addresses, answered without DNS. Hosts are matched
    // case-insensitively.
    std::map<std::string, std::vector<std::string>> host_overrides;
    // Per query try; c-ares retries up to `tries` times within the deadline.
    absl::Duration query_timeout = absl::Seconds(2);
    int tries = 2;
    // Queries with c-ares at once; more wait their turn (a burst of
    // thousands would overflow the DNS server's queue).
    int max_in_flight = 128;
  };
  class Gate;

  static absl::StatusOr<std::unique_ptr<CaresResolver>> Create(FetchEngine& engine,
                                                               const Options& options);
  ~CaresResolver() override;

  void LookupSrv(absl::string_view name, absl::Time deadline,
                 async::Callback<std::vector<SrvRecord>> done) override;
  void LookupHost(absl::string_view host, absl::Time deadline,
                  async::Callback<std::vector<IpAddress>> done) override;
  // A lookup of its own (never shared, never from the host overrides: an
  // overridden host has no CNAME records).
  void LookupCnames(absl::string_view host, absl::Time deadline,
                    async::Callback<std::vector<std::string>> done) override;

 private:
  CaresResolver(FetchEngine& engine, std::map<std::string, std::vector<IpAddress>> overrides,
                int max_in_flight);
  template <typename T>
  struct InFlight;
  // Whether `done` joined a lookup of `key` in flight; if not and no lookup
  // was in flight, *lead is the new one's record (its callers answered by
  // AnswerAll).
  template <typename T>
  bool Join(absl::flat_hash_map<std::string, std::shared_ptr<InFlight<T>>>& map,
            const std::string& key, absl::Time deadline, async::Callback<T>& done,
            std::shared_ptr<InFlight<T>>* lead);
  template <typename T>
  async::Callback<T> AnswerAll(absl::flat_hash_map<std::string, std::shared_ptr<InFlight<T>>>& map,
                               std::string key, std::shared_ptr<InFlight<T>> lead);

  FetchEngine& engine_;
  const std::map<std::string, std::vector<IpAddress>> overrides_;
  const std::shared_ptr<Gate> gate_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<InFlight<std::vector<SrvRecord>>>>
      srv_in_flight_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<InFlight<std::vector<IpAddress>>>>
      host_in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_CARES_RESOLVER_H_
