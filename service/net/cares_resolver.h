// CaresResolver: Resolver over c-ares, one channel per lookup (c-ares
// channels are not thread-safe; a lookup is rare next to the verification
// work, so a channel per lookup costs little and shares nothing).
//
// Options name the DNS servers to ask ("127.0.0.1:5353,[::1]:53"; empty: the
// system's /etc/resolv.conf) and static host overrides that answer LookupHost
// without DNS (for operators pinning a server, and for tests). /etc/hosts is
// not consulted when servers are given, so answers come from those servers
// alone.
//
// Thread-safe. Create fails with InvalidArgumentError for a bad server list
// or override.
#ifndef KEYVERIFIER_SERVICE_NET_CARES_RESOLVER_H_
#define KEYVERIFIER_SERVICE_NET_CARES_RESOLVER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/net/resolver.h"

namespace keyverifier::net {

class CaresResolver final : public Resolver {
 public:
  struct Options {
    std::string servers;  // c-ares CSV "host[:port],..."; empty: system config
    // host -> addresses, answered without DNS. Hosts are matched
    // case-insensitively.
    std::map<std::string, std::vector<std::string>> host_overrides;
    // Per query try; c-ares retries up to `tries` times within the deadline.
    absl::Duration query_timeout = absl::Seconds(2);
    int tries = 2;
  };

  static absl::StatusOr<std::unique_ptr<CaresResolver>> Create(const Options& options);
  ~CaresResolver() override;

  absl::StatusOr<std::vector<SrvRecord>> LookupSrv(absl::string_view name,
                                                   absl::Time deadline) override;
  absl::StatusOr<std::vector<IpAddress>> LookupHost(absl::string_view host,
                                                    absl::Time deadline) override;

 private:
  explicit CaresResolver(Options options,
                         std::map<std::string, std::vector<IpAddress>> overrides);
  Options options_;
  std::map<std::string, std::vector<IpAddress>> overrides_;
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_CARES_RESOLVER_H_
