// IP addresses and networks (CIDR), for the outbound address filter and the
// certificate whitelist's netmasks.
//
// Addresses are kept as 16 bytes; IPv4 addresses (and IPv4-mapped IPv6
// addresses, ::ffff:a.b.c.d, which reach the same hosts) are IPv4. Every
// address that enters the service (text, DNS answers, socket addresses) is
// built by IpAddress::V6 or IpAddress::V4, directly or through
// ParseIpAddress and FromSockaddr, so a mapped address is never judged as
// IPv6; Normalized() does the same for an address filled in field by field.
// Other IPv6 forms that carry an IPv4 address (NAT64, 6to4, Teredo,
// IPv4-compatible) stay IPv6: EmbeddedIpv4s and Rfc6052Embedded say what
// they carry. Parsing uses inet_pton. Pure and thread-safe. Errors:
// InvalidArgumentError quoting the input.
#ifndef KEYVERIFIER_SERVICE_NET_IP_ADDRESS_H_
#define KEYVERIFIER_SERVICE_NET_IP_ADDRESS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sockaddr;

namespace keyverifier::net {

struct IpAddress {
  bool v4 = false;
  // IPv4: the first 4 bytes; IPv6: all 16.
  std::array<uint8_t, 16> bytes{};

  // 4 bytes in network order.
  static IpAddress V4(const uint8_t* bytes4);
  // 16 bytes in network order; an IPv4-mapped address is that IPv4 address.
  static IpAddress V6(const uint8_t* bytes16);
  // An AF_INET or AF_INET6 socket address (as V4 or V6); nullopt for
  // another family or a length too short for its family.
  static std::optional<IpAddress> FromSockaddr(const sockaddr* address, size_t length);
  // The same address as V6 would build it (IPv4-mapped: IPv4).
  IpAddress Normalized() const;

  // Canonical text: dotted quad, or RFC 5952 IPv6 (no brackets).
  std::string ToString() const;
  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.v4 == b.v4 && a.bytes == b.bytes;
  }
};

// "host:port", with an IPv6 literal host in brackets ("[2001:db8::1]:8448").
std::string HostPort(absl::string_view host, uint16_t port);

// "192.0.2.1", "2001:db8::1", "[2001:db8::1]" (brackets allowed). No zone
// ids, no ports.
absl::StatusOr<IpAddress> ParseIpAddress(absl::string_view text);

struct IpNetwork {
  IpAddress base;  // host bits cleared
  int prefix_len = 0;

  // An IPv4-mapped address is in the IPv4 network it maps to.
  bool Contains(const IpAddress& a) const;
  std::string ToString() const;  // "10.0.0.0/8"
};

// "10.0.0.0/8", "fc00::/7"; a bare address is a /32 or /128. Host bits set
// below the prefix ("10.0.0.1/8") are refused: they usually mean a typo.
absl::StatusOr<IpNetwork> ParseIpNetwork(absl::string_view text);

// An IPv4 address that an IPv6 address carries, and the form that carries it.
struct EmbeddedIpv4 {
  IpAddress address;
  const char* form;  // "NAT64", "6to4", "Teredo server", ...
};

// The IPv4 addresses carried by the fixed-prefix forms:
//   64:ff9b::/96  NAT64, well-known prefix: the last 32 bits
//   2002::/16     6to4: bits 16 to 47
//   2001::/32     Teredo: the server (bits 32 to 63) and the client (the
//                 last 32 bits, inverted)
//   ::/96         IPv4-compatible (deprecated), ::a.b.c.d: the last 32 bits;
//                 not :: and ::1, which are themselves
// Empty for an IPv4 address and for any other IPv6 address. The local-use
// NAT64 prefix 64:ff9b:1::/48 is not among them: its layout is the
// operator's choice (see Rfc6052Embedded).
std::vector<EmbeddedIpv4> EmbeddedIpv4s(const IpAddress& address);

// Whether `prefix` is an IPv6 network of a length RFC 6052 defines for
// IPv4-embedded addresses (32, 40, 48, 56, 64 or 96).
bool IsRfc6052Prefix(const IpNetwork& prefix);
// The IPv4 address that `address` carries under `prefix`, laid out as
// RFC 6052 section 2.2 says for the prefix's length (bits 64 to 71 are
// skipped); nullopt when `address` is not in `prefix` or the prefix is not
// an RFC 6052 one.
std::optional<IpAddress> Rfc6052Embedded(const IpAddress& address, const IpNetwork& prefix);

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_IP_ADDRESS_H_
