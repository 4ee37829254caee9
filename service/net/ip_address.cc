#include "service/net/ip_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::net {
namespace {

absl::Status Bad(absl::string_view what, absl::string_view text,
                 absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ", what, " \"", absl::CEscape(text), "\": ", why));
}

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr uint8_t kNat64Prefix[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
constexpr uint8_t kZero[12] = {};

// The 4 bytes of `a` from `at` on, skipping byte 8 (RFC 6052's "u" octet,
// bits 64 to 71) when `skip_u`.
IpAddress Ipv4At(const IpAddress& a, int at, bool skip_u) {
  uint8_t b[4];
  for (int i = 0; i < 4; ++i, ++at) {
    if (skip_u && at == 8) ++at;
    b[i] = a.bytes[at];
  }
  return IpAddress::V4(b);
}

}  // namespace

IpAddress IpAddress::V4(const uint8_t* bytes4) {
  IpAddress out;
  out.v4 = true;
  std::copy(bytes4, bytes4 + 4, out.bytes.begin());
  return out;
}

IpAddress IpAddress::V6(const uint8_t* bytes16) {
  if (std::memcmp(bytes16, kMappedPrefix, 12) == 0) return V4(bytes16 + 12);
  IpAddress out;
  std::copy(bytes16, bytes16 + 16, out.bytes.begin());
  return out;
}

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* address, size_t length) {
  if (address == nullptr) return std::nullopt;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return V4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    return V6(reinterpret_cast<const uint8_t*>(&in6->sin6_addr));
  }
  return std::nullopt;
}

IpAddress IpAddress::Normalized() const {
  if (v4) return V4(bytes.data());
  return V6(bytes.data());
}

std::string HostPort(absl::string_view host, uint16_t port) {
  return host.find(':') != absl::string_view::npos ? absl::StrCat("[", host, "]:", port)
                                                   : absl::StrCat(host, ":", port);
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf) == nullptr) {
    return "?";
  }
  return buf;
}

absl::StatusOr<IpAddress> ParseIpAddress(absl::string_view text) {
  absl::string_view t = text;
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') {
    t = t.substr(1, t.size() - 2);
  }
  // inet_pton reads a C string: refuse embedded NULs and absurd lengths first.
  if (t.empty() || t.size() > 45 || t.find('\0') != absl::string_view::npos) {
    return Bad("IP address", text, "not an IP address");
  }
  const std::string s(t);
  uint8_t raw[16];
  if (inet_pton(AF_INET, s.c_str(), raw) == 1) return IpAddress::V4(raw);
  if (inet_pton(AF_INET6, s.c_str(), raw) == 1) return IpAddress::V6(raw);
  return Bad("IP address", text, "not an IP address");
}

bool IpNetwork::Contains(const IpAddress& address) const {
  const IpAddress a = address.Normalized();
  if (a.v4 != base.v4) return false;
  int full = prefix_len / 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
  int rest = prefix_len % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == base.bytes[full];
}

std::string IpNetwork::ToString() const {
  return absl::StrCat(base.ToString(), "/", prefix_len);
}

absl::StatusOr<IpNetwork> ParseIpNetwork(absl::string_view text) {
  size_t slash = text.find('/');
  absl::StatusOr<IpAddress> base = ParseIpAddress(text.substr(0, slash));
  if (!base.ok()) return Bad("network", text, "the address part is not an IP address");
  IpNetwork net;
  net.base = *base;
  const bool mapped = base->v4 && text.find(':') != absl::string_view::npos;
  const int max = base->v4 && !mapped ? 32 : 128;
  net.prefix_len = base->v4 ? 32 : 128;
  if (slash != absl::string_view::npos) {
    absl::string_view len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3 ||
        !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        !absl::SimpleAtoi(len, &net.prefix_len) || net.prefix_len > max) {
      return Bad("network", text, absl::StrCat("prefix length must be 0 to ", max));
    }
    // An IPv4-mapped IPv6 network ("::ffff:10.0.0.0/104") is an IPv4 network.
    if (mapped) {
      if (net.prefix_len < 96) {
        return Bad("network", text, "an IPv4-mapped network needs a prefix of 96 or more");
      }
      net.prefix_len -= 96;
    }
  }
  IpNetwork masked = net;
  for (int i = 0; i < 16; ++i) {
    int bits = std::clamp(net.prefix_len - 8 * i, 0, 8);
    masked.base.bytes[i] &= static_cast<uint8_t>(bits == 0 ? 0 : 0xff << (8 - bits));
  }
  if (!(masked.base == net.base)) {
    return Bad("network", text,
               absl::StrCat("host bits are set; did you mean ", masked.ToString(), "?"));
  }
  return net;
}

std::vector<EmbeddedIpv4> EmbeddedIpv4s(const IpAddress& address) {
  if (address.v4) return {};
  const IpAddress a = address.Normalized();
  if (a.v4) return {};
  const std::array<uint8_t, 16>& b = a.bytes;
  if (std::memcmp(b.data(), kNat64Prefix, 12) == 0) return {{Ipv4At(a, 12, false), "NAT64"}};
  if (b[0] == 0x20 && b[1] == 0x02) return {{Ipv4At(a, 2, false), "6to4"}};
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
    IpAddress client = Ipv4At(a, 12, false);
    for (int i = 0; i < 4; ++i) client.bytes[i] ^= 0xff;
    return {{Ipv4At(a, 4, false), "Teredo server"}, {client, "Teredo client"}};
  }
  if (std::memcmp(b.data(), kZero, 12) == 0) {
    // :: and ::1 are the unspecified and loopback addresses, not IPv4.
    const bool special = b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1;
    if (!special) return {{Ipv4At(a, 12, false), "IPv4-compatible"}};
  }
  return {};
}

bool IsRfc6052Prefix(const IpNetwork& prefix) {
  if (prefix.base.v4) return false;
  switch (prefix.prefix_len) {
    case 32:
    case 40:
    case 48:
    case 56:
    case 64:
    case 96:
      return true;
    default:
      return false;
  }
}

std::optional<IpAddress> Rfc6052Embedded(const IpAddress& address, const IpNetwork& prefix) {
  const IpAddress a = address.Normalized();
  if (!IsRfc6052Prefix(prefix) || !prefix.Contains(a)) return std::nullopt;
  return Ipv4At(a, prefix.prefix_len / 8, prefix.prefix_len < 96);
}

}  // namespace keyverifier::net
