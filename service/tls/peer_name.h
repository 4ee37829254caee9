// The name a TLS peer must prove: a DNS name (the Matrix server name or the
// delegated name from .well-known, whichever the caller connects to) or an
// IP literal, which only an IP subject alternative name can match.
//
// Thread-safe value type. Errors (Parse): InvalidArgumentError saying why the
// text is neither a DNS name nor an IP literal (a port, an empty label...).
#ifndef KEYVERIFIER_SERVICE_TLS_PEER_NAME_H_
#define KEYVERIFIER_SERVICE_TLS_PEER_NAME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::tls {

struct PeerName {
  enum class Kind { kDns, kIp };
  Kind kind = Kind::kDns;
  // kDns: lower-case, no trailing dot. kIp: the canonical text form
  // ("192.0.2.1", "2001:db8::1"), without brackets.
  std::string text;
  // kIp only: 4 or 16 bytes in network order.
  std::string ip_bytes;

  bool is_ip() const { return kind == Kind::kIp; }

  // "example.org", "192.0.2.1", "2001:db8::1" or "[2001:db8::1]". A port is
  // refused: the caller strips it.
  static absl::StatusOr<PeerName> Parse(absl::string_view text);
  // Only as an IP literal (IPv4 dotted quad or IPv6, brackets allowed).
  static absl::StatusOr<PeerName> ParseIp(absl::string_view text);
  // Only as a DNS name.
  static absl::StatusOr<PeerName> ParseDns(absl::string_view text);
};

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_PEER_NAME_H_
