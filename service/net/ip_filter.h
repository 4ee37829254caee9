// IpFilter: which addresses outbound connections may reach.
//
// The service fetches keys from addresses that remote parties choose (DNS,
// .well-known, SRV), so without a filter it could be made to reach hosts on
// the operator's internal network. Every resolved address is checked before
// a connection is made. An address is refused when it lies in a denied
// network and in no allowed network; the allowlist wins, so an operator can
// open one internal range (a private federation) without dropping the rest.
//
// An IPv4-mapped address (::ffff:a.b.c.d) is judged as the IPv4 address it
// maps to, however it was built. An IPv6 address that carries an IPv4
// address is also judged by that address, and refused when it is
// ("2002:7f00:1:: carries 127.0.0.1 (6to4), which is in denied network
// 127.0.0.0/8"): NAT64 with the well-known prefix 64:ff9b::/96 and with the
// operator's own prefixes (nat64_prefixes), 6to4 (2002::/16), Teredo
// (2001::/32: refused if its server or its client address is) and the
// deprecated IPv4-compatible ::a.b.c.d. An address the allowlist opens, or
// an embedded IPv4 address it opens, is not refused for that address.
//
// The default denylist holds every entry of the IANA IPv4 and IPv6
// Special-Purpose Address Registries that is not globally reachable, plus
// multicast, the deprecated site-local range, Teredo (tunnels into hosts
// behind NAT; no Matrix server lives there) and the local-use NAT64 prefix
// 64:ff9b:1::/48 (its layout is the operator's choice: name it in
// nat64_prefixes to have its addresses judged by what they carry). A few
// globally reachable registry entries lie inside denied ranges and stay
// reachable (DefaultReachable); the PCP and DNS-SD SRP anycast addresses do
// not, as their nearest instance is the local gateway or border router.
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
    // multicast, unspecified, documentation, benchmarking, Teredo and the
    // other special-purpose ranges not globally reachable).
    bool use_default_denylist = true;
    std::vector<std::string> denied;   // further networks (CIDR)
    std::vector<std::string> allowed;  // networks reachable whatever is denied
    // The operator's own NAT64 prefixes (RFC 6052: IPv6, length 32, 40, 48,
    // 56, 64 or 96). An address in one is judged by the IPv4 address it
    // carries, laid out as RFC 6052 says for the length; the default
    // denylist does not refuse the prefix itself (a local-use or ULA one),
    // `denied` still does.
    std::vector<std::string> nat64_prefixes;
  };

  static absl::StatusOr<IpFilter> Create(const Options& options);
  // Allows everything; for tests that connect to loopback servers.
  static IpFilter AllowAll();

  // Why `address` may not be reached ("127.0.0.1 is in denied network
  // 127.0.0.0/8"), or nullopt when it may.
  std::optional<std::string> Refusal(const IpAddress& address) const;
  bool Allowed(const IpAddress& address) const { return !Refusal(address); }

  static const std::vector<std::string>& DefaultDenied();
  // Globally reachable networks inside DefaultDenied() ranges, which the
  // default denylist leaves reachable.
  static const std::vector<std::string>& DefaultReachable();

 private:
  IpFilter() = default;
  // The network that refuses `address` itself (not what it carries).
  const IpNetwork* DeniedBy(const IpAddress& address) const;

  std::vector<IpNetwork> denied_;           // the operator's
  std::vector<IpNetwork> default_denied_;
  std::vector<IpNetwork> default_reachable_;  // exceptions to default_denied_
  std::vector<IpNetwork> allowed_;
  std::vector<IpNetwork> nat64_;
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_IP_FILTER_H_
