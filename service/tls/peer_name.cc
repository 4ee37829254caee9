#include "service/tls/peer_name.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace keyverifier::tls {

absl::StatusOr<PeerName> PeerName::ParseIp(absl::string_view text) {
  absl::string_view t = text;
  bool bracketed = absl::StartsWith(t, "[") && absl::EndsWith(t, "]");
  if (bracketed) t = t.substr(1, t.size() - 2);
  std::string s(t);
  PeerName p;
  p.kind = Kind::kIp;
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (!bracketed && inet_pton(AF_INET, s.c_str(), buf) == 1) {
    p.ip_bytes.assign(reinterpret_cast<char*>(buf), 4);
    inet_ntop(AF_INET, buf, out, sizeof(out));
  } else if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    p.ip_bytes.assign(reinterpret_cast<char*>(buf), 16);
    inet_ntop(AF_INET6, buf, out, sizeof(out));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("peer name \"", text, "\" is not an IP literal"));
  }
  p.text = out;
  return p;
}

absl::StatusOr<PeerName> PeerName::ParseDns(absl::string_view text) {
  absl::string_view t = text;
  if (absl::EndsWith(t, ".")) t.remove_suffix(1);
  if (t.empty()) {
    return absl::InvalidArgumentError("peer name is empty");
  }
  // "192.0.2.1." is the address with a trailing dot, not a DNS name: taken
  // as one, it would be matched against DNS SANs, where an IP literal only
  // ever matches an IP SAN.
  if (unsigned char buf[4]; inet_pton(AF_INET, std::string(t).c_str(), buf) == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer name \"", text, "\" is an IPv4 address, not a DNS name"));
  }
  if (t.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer name is ", t.size(), " characters; at most 253"));
  }
  for (absl::string_view label : absl::StrSplit(t, '.')) {
    if (label.empty() || label.size() > 63) {
      return absl::InvalidArgumentError(absl::StrCat("peer name \"", text,
                                                     "\" has a label of ", label.size(),
                                                     " characters (1 to 63 allowed)"));
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return absl::InvalidArgumentError(
            absl::StrCat("peer name \"", text, "\": character '", std::string(1, c),
                         "' is not allowed in a DNS name",
                         c == ':' ? " (pass the host without a port)" : ""));
      }
    }
  }
  PeerName p;
  p.kind = Kind::kDns;
  p.text = absl::AsciiStrToLower(t);
  return p;
}

absl::StatusOr<PeerName> PeerName::Parse(absl::string_view text) {
  absl::StatusOr<PeerName> ip = ParseIp(text);
  if (ip.ok()) return ip;
  return ParseDns(text);
}

}  // namespace keyverifier::tls
