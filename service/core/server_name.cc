#include "service/core/server_name.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::core {
namespace {

// Names come from untrusted input and end up in logs and replies: escape
// anything unprintable when quoting them.
absl::Status Bad(absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid server name \"", absl::CEscape(name), "\": ", why));
}

bool IsDnsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '-';
}

// The grammar's IPv6char: hex digits, ':' and '.' (for an embedded IPv4 tail).
bool IsIPv6Char(char c) {
  return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == ':' ||
         c == '.';
}

// inet_pton only parses text into an address; it does no I/O. It reads a C
// string, so callers must first make sure `s` holds no NUL: a name read from
// JSON ("\u0000") could otherwise pass with everything after the NUL unseen.
bool IsIPv4(const std::string& s) {
  unsigned char buf[4];
  return inet_pton(AF_INET, s.c_str(), buf) == 1;
}
bool IsIPv6(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

absl::StatusOr<ServerName> ServerName::Parse(absl::string_view name) {
  if (name.empty()) return Bad(name, "empty");
  HostKind kind = HostKind::kDnsName;
  absl::string_view host = name;
  absl::string_view port;
  if (name.front() == '[') {
    size_t close = name.find(']');
    if (close == absl::string_view::npos) return Bad(name, "unclosed '['");
    host = name.substr(1, close - 1);
    absl::string_view rest = name.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Bad(name, "junk after ']'");
      port = rest.substr(1);
      if (port.empty()) return Bad(name, "empty port");
    }
    // The grammar (2 to 45 IPv6chars) first: it rules out NULs and zone ids
    // ("%eth0") before inet_pton decides whether the address is well formed.
    if (host.size() < 2 || host.size() > 45 ||
        !std::all_of(host.begin(), host.end(), IsIPv6Char)) {
      return Bad(name, "not an IPv6 literal");
    }
    if (!IsIPv6(std::string(host))) return Bad(name, "not an IPv6 literal");
    kind = HostKind::kIPv6;
  } else {
    size_t colon = name.rfind(':');
    if (colon != absl::string_view::npos) {
      host = name.substr(0, colon);
      port = name.substr(colon + 1);
      if (port.empty()) return Bad(name, "empty port");
    }
    if (host.empty()) return Bad(name, "empty host");
    if (host.size() > 255) return Bad(name, "host longer than 255 characters");
    for (char c : host) {
      if (!IsDnsNameChar(c)) {
        return Bad(name,
                   absl::StrCat("character '",
                                absl::CEscape(absl::string_view(&c, 1)),
                                "' is not allowed in a host name"));
      }
    }
    if (IsIPv4(std::string(host))) kind = HostKind::kIPv4;
  }
  std::optional<uint16_t> port_number;
  if (!port.empty()) {
    uint32_t p = 0;
    bool digits = port.size() <= 5;
    for (char c : port) digits = digits && absl::ascii_isdigit(c);
    if (!digits || !absl::SimpleAtoi(port, &p) || p > 65535) {
      return Bad(name, absl::StrCat("port \"", absl::CEscape(port),
                                    "\" is not 1-5 digits <= 65535"));
    }
    port_number = static_cast<uint16_t>(p);
  }
  return ServerName(std::string(name), kind, host.size(), port_number);
}

ServerName ServerName::WithPort(uint16_t port) const {
  std::string text = kind_ == HostKind::kIPv6 ? absl::StrCat("[", host(), "]:", port)
                                              : absl::StrCat(host(), ":", port);
  return ServerName(std::move(text), kind_, host_size_, port);
}

absl::StatusOr<ServerName> ServerNameOfId(absl::string_view id) {
  size_t colon = id.find(':');
  if (id.size() < 2 || colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", absl::CEscape(id), "\" has no \":server.name\" part"));
  }
  absl::StatusOr<ServerName> server = ServerName::Parse(id.substr(colon + 1));
  if (!server.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("in \"", absl::CEscape(id), "\": ", server.status().message()));
  }
  return server;
}

}  // namespace keyverifier::core
