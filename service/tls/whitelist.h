// Peers whose certificates are not checked at all: domain globs
// ("*.onion", "*.internal.example", "exact.example") and CIDR ranges
// ("10.0.0.0/8", "fc00::/7", or a single address). A glob's "*" stands for
// one or more whole labels, so "*.onion" matches "a.onion" and "a.b.onion"
// but not "onion". CIDR rules match IP literals only; globs DNS names only.
//
// Thread-safety: immutable after Create. Errors (Create): InvalidArgumentError
// naming the rule and what is wrong with it (a "*" inside a label, a prefix
// length out of range, host bits set past the prefix).
#ifndef KEYVERIFIER_SERVICE_TLS_WHITELIST_H_
#define KEYVERIFIER_SERVICE_TLS_WHITELIST_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/tls/peer_name.h"

namespace keyverifier::tls {

class Whitelist {
 public:
  enum class RuleKind { kDomainGlob, kCidr };
  struct Match {
    RuleKind kind;
    std::string rule;  // as configured
  };

  static absl::StatusOr<Whitelist> Create(const std::vector<std::string>& rules);
  Whitelist() = default;

  // The first rule that covers `peer`, if any.
  std::optional<Match> Find(const PeerName& peer) const;

 private:
  struct Glob {
    std::string rule;
    bool wildcard = false;
    std::string suffix;  // lower-case; ".internal.example" or the exact name
  };
  struct Cidr {
    std::string rule;
    std::string network;  // 4 or 16 bytes
    int prefix_bits = 0;
  };
  std::vector<Glob> globs_;
  std::vector<Cidr> cidrs_;
};

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_WHITELIST_H_
