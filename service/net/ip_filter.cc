#include "service/net/ip_filter.h"

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

const std::vector<std::string>& IpFilter::DefaultDenied() {
  static const std::vector<std::string> kDenied = {
      // IPv4
      "0.0.0.0/8",        // "this network", unspecified
      "10.0.0.0/8",       // private
      "100.64.0.0/10",    // carrier-grade NAT
      "127.0.0.0/8",      // loopback
      "169.254.0.0/16",   // link-local
      "172.16.0.0/12",    // private
      "192.0.0.0/24",     // IETF protocol assignments
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
      "100::/64",         // discard-only
      "2001:db8::/32",    // documentation
      "fc00::/7",         // unique local
      "fe80::/10",        // link-local
      "fec0::/10",        // site-local (deprecated)
      "ff00::/8",         // multicast
  };
  return kDenied;
}

absl::StatusOr<IpFilter> IpFilter::Create(const Options& options) {
  IpFilter f;
  if (options.use_default_denylist) {
    if (absl::Status s = AddAll(DefaultDenied(), "default denylist", &f.denied_);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = AddAll(options.denied, "denied", &f.denied_); !s.ok()) return s;
  if (absl::Status s = AddAll(options.allowed, "allowed", &f.allowed_); !s.ok()) {
    return s;
  }
  return f;
}

IpFilter IpFilter::AllowAll() { return IpFilter(); }

std::optional<std::string> IpFilter::Refusal(const IpAddress& raw) const {
  const IpAddress address = raw.Normalized();
  if (FindIn(allowed_, address) != nullptr) return std::nullopt;
  if (const IpNetwork* n = FindIn(denied_, address)) {
    return absl::StrCat(address.ToString(), " is in denied network ", n->ToString());
  }
  if (std::optional<IpAddress> inner = address.Nat64Embedded()) {
    if (FindIn(allowed_, *inner) != nullptr) return std::nullopt;
    if (const IpNetwork* n = FindIn(denied_, *inner)) {
      return absl::StrCat(address.ToString(), " carries ", inner->ToString(),
                          ", which is in denied network ", n->ToString());
    }
  }
  return std::nullopt;
}

}  // namespace keyverifier::net
