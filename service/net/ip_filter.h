// IpFilter: which addresses outbound connections may reach.
//
// The service fetches keys from addresses that remote parties choose (DNS,
// .well-known, SRV), so without a filter it could be made to reach hosts on
// the operator's internal network. Every resolved address is checked before
// a connection is made. An address is refused when it lies in a denied
// network and in no allowed network; the allowlist wins, so an operator can
// open one internal range (a private federation) without dropping the rest.
// An IPv4-mapped address (::ffff:a.b.c.d) is judged as the IPv4 address it
// maps to, however it was built. NAT64 addresses (64:ff9b::/96) are also
// judged by the IPv4 address they carry.
//
// Immutable after Create; thread-safe. Create fails with InvalidArgumentError
// naming the bad entry.
#ifndef KEYVERIFIER_SERVICE_NET_IP_FILTER_H_
#define KEYVERIFIER_SERVICE_NET_IP_FILTER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/net/ip_address.h"

namespace keyverifier::net {

class IpFilter {
 public:
  struct Options {
    // Start from DefaultDenied() (loopback, private, link-local, CGNAT, ULA,
    // multicast, unspecified, documentation and reserved ranges).
    bool use_default_denylist = true;
    std::vector<std::string> denied;   // further networks (CIDR)
    std::vector<std::string> allowed;  // networks reachable whatever is denied
  };

  static absl::StatusOr<IpFilter> Create(const Options& options);
  // Allows everything; for tests that connect to loopback servers.
  static IpFilter AllowAll();

  // Why `address` may not be reached ("127.0.0.1 is in denied network
  // 127.0.0.0/8"), or nullopt when it may.
  std::optional<std::string> Refusal(const IpAddress& address) const;
  bool Allowed(const IpAddress& address) const { return !Refusal(address); }

  static const std::vector<std::string>& DefaultDenied();

 private:
  IpFilter() = default;
  std::vector<IpNetwork> denied_;
  std::vector<IpNetwork> allowed_;
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_IP_FILTER_H_
