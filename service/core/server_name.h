// Matrix server names (appendices: "Server Name") and the identifiers that
// carry them (user ids, v1/v2 event ids).
//
//   server_name = hostname [ ":" port ]
//   hostname    = IPv4address / "[" IPv6address "]" / dns-name
//   dns-name    = 1*255 of [0-9A-Za-z.-]
//   port        = 1*5DIGIT
//
// Pure and thread-safe. Errors: InvalidArgumentError quoting the input.
#ifndef KEYVERIFIER_SERVICE_CORE_SERVER_NAME_H_
#define KEYVERIFIER_SERVICE_CORE_SERVER_NAME_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::core {

struct ServerName {
  enum class HostKind { kDnsName, kIPv4, kIPv6 };
  std::string host;  // as written; IPv6 without brackets
  HostKind kind = HostKind::kDnsName;
  std::optional<uint16_t> port;
};

absl::StatusOr<ServerName> ParseServerName(absl::string_view name);

// The server name of "@localpart:server.name" (or any sigil'd "x:server" id,
// e.g. "$opaque:server" event ids in room versions 1 and 2): everything after
// the first colon, validated.
absl::StatusOr<std::string> ServerNameOfId(absl::string_view id);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_SERVER_NAME_H_
