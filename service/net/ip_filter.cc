#include "service/net/ip_filter.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::net {
namespace {

absl::Status AddAll(const std::vector<std::string>& texts, absl::string_view list,
                    std::vector<IpNetwork>* out) {
  for (size_t i = 0; i < texts.size(); ++i) {
    absl::StatusOr<IpNetwork> net = ParseIpNetwork(texts[i]);
    if (!net.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(list, "[", i, "]: ", net.status().message()));
    }
    out->push_back(*net);
  }
  return absl::OkStatus();
}

const IpNetwork* FindIn(const std::vector<IpNetwork>& nets, const IpAddress& a) {
  for (const IpNetwork& n : nets) {
    if (n.Contains(a)) return &n;
  }
  return nullptr;
}

}  // namespace

// The IANA Special-Purpose Address Registries' entries that are not
// globally reachable, and a few more ranges no Matrix server lives in.
// First match names the refusal, so narrower entries come first.
const std::vector<std::string>& IpFilter::DefaultDenied() {
  static const std::vector<std::string> kDenied = {
      // IPv4
      "0.0.0.0/8",        // "this network", unspecified
      "10.0.0.0/8",       // private
      "100.64.0.0/10",    // carrier-grade NAT
      "127.0.0.0/8",      // loopback
      "169.254.0.0/16",   // link-local
      "172.16.0.0/12",    // private
      "192.0.0.0/24",     // IETF protocol assignments (DS-Lite, NAT64 discovery, PCP anycast)
      "192.0.2.0/24",     // documentation
      "192.88.99.0/24",   // 6to4 relay anycast (deprecated)
      "192.168.0.0/16",   // private
      "198.18.0.0/15",    // benchmarking
      "198.51.100.0/24",  // documentation
      "203.0.113.0/24",   // documentation
      "224.0.0.0/4",      // multicast
      "240.0.0.0/4",      // reserved, broadcast
      // IPv6 (IPv4-mapped addresses are judged as IPv4)
      "::/128",           // unspecified
      "::1/128",          // loopback
      "64:ff9b:1::/48",   // local-use NAT64 (see nat64_prefixes)
      "100::/64",         // discard-only
      "100:0:0:1::/64",   // dummy prefix
      "2001::/32",        // Teredo
      "2001::/23",        // IETF protocol assignments (benchmarking, ORCHID, PCP and SRP anycast)
      "2001:db8::/32",    // documentation
      "3fff::/20",        // documentation
      "5f00::/16",        // segment routing (SRv6) SIDs
      "fc00::/7",         // unique local
      "fe80::/10",        // link-local
      "fec0::/10",        // site-local (deprecated)
      "ff00::/8",         // multicast
  };
  return kDenied;
}

const std::vector<std::string>& IpFilter::DefaultReachable() {
  static const std::vector<std::string> kReachable = {
      "192.0.0.10/32",     // TURN anycast
      "2001:1::2/128",     // TURN anycast
      "2001:3::/32",       // AMT
      "2001:4:112::/48",   // AS112-v6
      "2001:20::/28",      // ORCHIDv2
      "2001:30::/28",      // drone remote ID entity tags
  };
  return kReachable;
}

absl::StatusOr<IpFilter> IpFilter::Create(const Options& options) {
  IpFilter f;
  if (options.use_default_denylist) {
    if (absl::Status s = AddAll(DefaultDenied(), "default denylist", &f.default_denied_);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            AddAll(DefaultReachable(), "default reachable", &f.default_reachable_);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = AddAll(options.denied, "denied", &f.denied_); !s.ok()) return s;
  if (absl::Status s = AddAll(options.allowed, "allowed", &f.allowed_); !s.ok()) {
    return s;
  }
  if (absl::Status s = AddAll(options.nat64_prefixes, "nat64_prefixes", &f.nat64_); !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < f.nat64_.size(); ++i) {
    if (!IsRfc6052Prefix(f.nat64_[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nat64_prefixes[", i, "]: invalid NAT64 prefix \"",
          absl::CEscape(options.nat64_prefixes[i]),
          "\": an IPv6 prefix of length 32, 40, 48, 56, 64 or 96 (RFC 6052)"));
    }
  }
  return f;
}

IpFilter IpFilter::AllowAll() { return IpFilter(); }

const IpNetwork* IpFilter::DeniedBy(const IpAddress& address) const {
  if (const IpNetwork* n = FindIn(denied_, address)) return n;
  const IpNetwork* n = FindIn(default_denied_, address);
  if (n == nullptr || FindIn(default_reachable_, address) != nullptr ||
      FindIn(nat64_, address) != nullptr) {
    return nullptr;
  }
  return n;
}

std::optional<std::string> IpFilter::Refusal(const IpAddress& raw) const {
  const IpAddress address = raw.Normalized();
  if (FindIn(allowed_, address) != nullptr) return std::nullopt;
  if (const IpNetwork* n = DeniedBy(address)) {
    return absl::StrCat(address.ToString(), " is in denied network ", n->ToString());
  }
  std::vector<EmbeddedIpv4> carried = EmbeddedIpv4s(address);
  for (const IpNetwork& prefix : nat64_) {
    if (std::optional<IpAddress> inner = Rfc6052Embedded(address, prefix)) {
      carried.push_back({*inner, "NAT64"});
    }
  }
  for (const EmbeddedIpv4& inner : carried) {
    if (FindIn(allowed_, inner.address) != nullptr) continue;
    if (const IpNetwork* n = DeniedBy(inner.address)) {
      return absl::StrCat(address.ToString(), " carries ", inner.address.ToString(), " (",
                          inner.form, "), which is in denied network ", n->ToString());
    }
  }
  return std::nullopt;
}

}  // namespace keyverifier::net
