// IP addresses and networks (service/net/ip_address.h), and the TLS peer
// name parser that also reads IP literals (service/tls/peer_name.h).
//
// Invariants:
// - An accepted address is normalised (an IPv4-mapped address is IPv4, an
//   IPv4 address has no bytes past the fourth), and its text form parses
//   back to it. A socket address of the same bytes gives the same address.
// - An accepted network has its host bits clear, a prefix within the
//   family's length, contains its base address and its highest address
//   (unless that is IPv4-mapped), and its text form parses
//   back to it; it contains an address exactly when it contains the address
//   in any form (mapped or not).
// - EmbeddedIpv4s and Rfc6052Embedded only ever give IPv4 addresses, and
//   Rfc6052Embedded only for an address inside the prefix.
// - The first 16 bytes of input, taken as an IPv6 address, behave the same.
// - A PeerName that parses is normalised: its text parses to the same name.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/net/ip_address.h"
#include "service/tls/peer_name.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::net {
namespace {

// A network the fuzzer's addresses are checked against, per RFC 6052 length.
const std::vector<IpNetwork>& Prefixes() {
  static const auto* prefixes = [] {
    auto* out = new std::vector<IpNetwork>;
    for (const char* text : {"2001:db8::/32", "2001:db8:100::/40", "2001:db8:122::/48",
                             "2001:db8:122:300::/56", "2001:db8:122:344::/64",
                             "64:ff9b::/96", "64:ff9b:1::/48", "::/0", "0.0.0.0/0",
                             "10.0.0.0/8", "::ffff:0:0/96"}) {
      out->push_back(*ParseIpNetwork(text));
    }
    return out;
  }();
  return *prefixes;
}

void CheckAddress(const IpAddress& a) {
  FUZZ_CHECK(a == a.Normalized());
  if (a.v4) {
    for (size_t i = 4; i < a.bytes.size(); ++i) FUZZ_CHECK(a.bytes[i] == 0);
  }
  const std::string text = a.ToString();
  const absl::StatusOr<IpAddress> again = ParseIpAddress(text);
  FUZZ_CHECK_MSG(again.ok() && *again == a, text);
  const absl::StatusOr<IpAddress> bracketed = ParseIpAddress("[" + text + "]");
  FUZZ_CHECK_MSG(bracketed.ok() && *bracketed == a, text);

  if (a.v4) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    std::memcpy(&in.sin_addr, a.bytes.data(), 4);
    const std::optional<IpAddress> from =
        IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    FUZZ_CHECK(from && *from == a);
    // The same address, IPv4-mapped, is the same address.
    uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(mapped + 12, a.bytes.data(), 4);
    FUZZ_CHECK(IpAddress::V6(mapped) == a);
  } else {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    std::memcpy(&in6.sin6_addr, a.bytes.data(), 16);
    const std::optional<IpAddress> from =
        IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    FUZZ_CHECK(from && *from == a);
    FUZZ_CHECK(!IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6),
                                        sizeof in6 - 1));
  }

  for (const EmbeddedIpv4& e : EmbeddedIpv4s(a)) {
    FUZZ_CHECK(!a.v4);
    FUZZ_CHECK(e.address.v4 && e.form != nullptr);
  }
  for (const IpNetwork& prefix : Prefixes()) {
    const std::optional<IpAddress> embedded = Rfc6052Embedded(a, prefix);
    if (!embedded) continue;
    FUZZ_CHECK(embedded->v4 && IsRfc6052Prefix(prefix) && prefix.Contains(a));
  }
}

void CheckNetwork(const IpNetwork& n, absl::string_view text) {
  FUZZ_CHECK(n.prefix_len >= 0 && n.prefix_len <= (n.base.v4 ? 32 : 128));
  FUZZ_CHECK(n.base == n.base.Normalized());
  FUZZ_CHECK_MSG(n.Contains(n.base), n.ToString());
  const absl::StatusOr<IpNetwork> again = ParseIpNetwork(n.ToString());
  FUZZ_CHECK_MSG(again.ok() && again->base == n.base && again->prefix_len == n.prefix_len,
                 n.ToString() + " from " + std::string(text));
  // Host bits clear: the base with every host bit set is still inside, and
  // the base is the lowest address inside.
  IpAddress top = n.base;
  const int bits = n.base.v4 ? 32 : 128;
  for (int i = n.prefix_len; i < bits; ++i) top.bytes[i / 8] |= uint8_t(0x80 >> (i % 8));
  // (Unless that address is IPv4-mapped, as the top of ::/80 is: a mapped
  // address is judged as the IPv4 address it is, in IPv4 networks only.)
  FUZZ_CHECK(n.Contains(top) || top.Normalized().v4);
  for (int i = n.prefix_len; i < bits; ++i) {
    FUZZ_CHECK((n.base.bytes[i / 8] & (0x80 >> (i % 8))) == 0);
  }
  if (n.base.v4) {
    // The IPv4-mapped form of an address inside is inside too.
    IpAddress mapped;
    mapped.bytes[10] = mapped.bytes[11] = 0xff;
    std::memcpy(mapped.bytes.data() + 12, top.bytes.data(), 4);
    FUZZ_CHECK(n.Contains(mapped));
  }
}

}  // namespace
}  // namespace keyverifier::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::net;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const absl::StatusOr<IpAddress> address = ParseIpAddress(text);
  if (address.ok()) CheckAddress(*address);

  const absl::StatusOr<IpNetwork> network = ParseIpNetwork(text);
  if (network.ok()) {
    CheckNetwork(*network, text);
    if (address.ok()) {
      // A bare address is the network of just itself.
      FUZZ_CHECK(network->base == *address);
      FUZZ_CHECK(network->prefix_len == (address->v4 ? 32 : 128));
    }
  }
  if (address.ok()) {
    for (const IpNetwork& n : Prefixes()) {
      FUZZ_CHECK(n.Contains(*address) == n.Contains(address->Normalized()));
    }
  }

  if (size >= 16) {
    const IpAddress raw = IpAddress::V6(data);
    CheckAddress(raw);
    for (const IpNetwork& n : Prefixes()) {
      FUZZ_CHECK(n.Contains(raw) == n.Contains(raw.Normalized()));
    }
  }

  const absl::StatusOr<keyverifier::tls::PeerName> peer = keyverifier::tls::PeerName::Parse(text);
  if (peer.ok()) {
    const absl::StatusOr<keyverifier::tls::PeerName> again =
        keyverifier::tls::PeerName::Parse(peer->text);
    FUZZ_CHECK_MSG(again.ok() && again->kind == peer->kind && again->text == peer->text &&
                       again->ip_bytes == peer->ip_bytes,
                   peer->text);
    if (peer->is_ip()) {
      FUZZ_CHECK(peer->ip_bytes.size() == 4 || peer->ip_bytes.size() == 16);
    } else {
      FUZZ_CHECK(peer->ip_bytes.empty());
    }
  }
  return 0;
}
