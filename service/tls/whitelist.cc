#include "service/tls/whitelist.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::tls {
namespace {

bool PrefixMatches(const std::string& a, const std::string& b, int bits) {
  int full = bits / 8;
  if (a.compare(0, full, b, 0, full) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (static_cast<unsigned char>(a[full]) & mask) ==
         (static_cast<unsigned char>(b[full]) & mask);
}

}  // namespace

absl::StatusOr<Whitelist> Whitelist::Create(const std::vector<std::string>& rules) {
  Whitelist w;
  for (const std::string& rule : rules) {
    absl::string_view r = absl::StripAsciiWhitespace(rule);
    if (r.empty()) return absl::InvalidArgumentError("whitelist: empty rule");
    size_t slash = r.find('/');
    if (slash != absl::string_view::npos) {
      absl::StatusOr<PeerName> ip = PeerName::ParseIp(r.substr(0, slash));
      if (!ip.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("whitelist rule \"", rule,
                                                       "\": \"", r.substr(0, slash),
                                                       "\" is not an IP address"));
      }
      int max_bits = static_cast<int>(ip->ip_bytes.size() * 8);
      int bits = -1;
      absl::string_view len = r.substr(slash + 1);
      if (len.empty() || len.size() > 3 || !absl::SimpleAtoi(len, &bits) || bits < 0 ||
          bits > max_bits || !absl::ascii_isdigit(len[0])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "whitelist rule \"", rule, "\": prefix length must be 0 to ", max_bits));
      }
      Cidr c{rule, ip->ip_bytes, bits};
      // Host bits past the prefix usually mean a typo in the network.
      std::string masked = ip->ip_bytes;
      for (int i = 0; i < max_bits; ++i) {
        if (i >= bits) masked[i / 8] &= static_cast<char>(~(0x80 >> (i % 8)));
      }
      if (masked != ip->ip_bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "whitelist rule \"", rule, "\": address has bits set past /", bits));
      }
      w.cidrs_.push_back(std::move(c));
      continue;
    }
    absl::StatusOr<PeerName> ip = PeerName::ParseIp(r);
    if (ip.ok()) {
      w.cidrs_.push_back(
          Cidr{rule, ip->ip_bytes, static_cast<int>(ip->ip_bytes.size() * 8)});
      continue;
    }
    Glob g;
    g.rule = rule;
    absl::string_view name = r;
    if (absl::StartsWith(name, "*.")) {
      g.wildcard = true;
      name.remove_prefix(2);
    }
    if (absl::StrContains(name, '*')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "whitelist rule \"", rule,
          "\": \"*\" is only allowed as the whole left-most label (\"*.example\")"));
    }
    absl::StatusOr<PeerName> dns = PeerName::ParseDns(name);
    if (!dns.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("whitelist rule \"", rule, "\": ", dns.status().message()));
    }
    g.suffix = g.wildcard ? absl::StrCat(".", dns->text) : dns->text;
    w.globs_.push_back(std::move(g));
  }
  return w;
}

std::optional<Whitelist::Match> Whitelist::Find(const PeerName& peer) const {
  if (peer.is_ip()) {
    for (const Cidr& c : cidrs_) {
      if (c.network.size() == peer.ip_bytes.size() &&
          PrefixMatches(c.network, peer.ip_bytes, c.prefix_bits)) {
        return Match{RuleKind::kCidr, c.rule};
      }
    }
    return std::nullopt;
  }
  for (const Glob& g : globs_) {
    bool hit = g.wildcard ? (peer.text.size() > g.suffix.size() &&
                             absl::EndsWith(peer.text, g.suffix))
                          : peer.text == g.suffix;
    if (hit) return Match{RuleKind::kDomainGlob, g.rule};
  }
  return std::nullopt;
}

}  // namespace keyverifier::tls
