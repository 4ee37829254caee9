// Matrix server names (appendices: "Server Name") and the identifiers that
// carry them (user ids, v1/v2 event ids).
//
//   server_name = hostname [ ":" port ]
//   hostname    = IPv4address / "[" IPv6address "]" / dns-name
//   dns-name    = 1*255 of [0-9A-Za-z.-]
//   port        = 1*5DIGIT
//
// A name is parsed once, where it enters (the API, a key response, an event,
// the configuration), and travels as a ServerName from there: whoever holds
// one holds a valid name and never parses it again.
//
// Pure and thread-safe. Errors: InvalidArgumentError quoting the input.
#ifndef KEYVERIFIER_SERVICE_CORE_SERVER_NAME_H_
#define KEYVERIFIER_SERVICE_CORE_SERVER_NAME_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::core {

// A valid server name. Keeps the text exactly as written: that text is the
// name's identity (equality, order, hashing), the key of every cache and of
// the store; "example.org:08448" and "example.org:8448" are two names, as
// they are two keys in a response's signatures. Cheap to copy: the text and
// a few small fields.
class ServerName {
 public:
  enum class HostKind { kDnsName, kIPv4, kIPv6 };

  static absl::StatusOr<ServerName> Parse(absl::string_view name);

  // The name as written.
  const std::string& str() const { return text_; }
  absl::string_view view() const { return text_; }
  // The host as written; an IPv6 literal without its brackets.
  absl::string_view host() const {
    return absl::string_view(text_).substr(kind_ == HostKind::kIPv6 ? 1 : 0, host_size_);
  }
  HostKind kind() const { return kind_; }
  bool is_ip_literal() const { return kind_ != HostKind::kDnsName; }
  // The explicit port, if the name has one.
  std::optional<uint16_t> port() const { return port_; }
  // The same host with `port` as its explicit port ("host:port", an IPv6
  // literal in brackets): always valid, so no parse.
  ServerName WithPort(uint16_t port) const;

  friend bool operator==(const ServerName& a, const ServerName& b) {
    return a.text_ == b.text_;
  }
  friend bool operator!=(const ServerName& a, const ServerName& b) { return !(a == b); }
  friend bool operator<(const ServerName& a, const ServerName& b) { return a.text_ < b.text_; }
  template <typename H>
  friend H AbslHashValue(H h, const ServerName& n) {
    return H::combine(std::move(h), n.text_);
  }

 private:
  ServerName(std::string text, HostKind kind, size_t host_size, std::optional<uint16_t> port)
      : text_(std::move(text)), host_size_(host_size), kind_(kind), port_(port) {}

  std::string text_;
  size_t host_size_ = 0;
  HostKind kind_ = HostKind::kDnsName;
  std::optional<uint16_t> port_;
};

// The server name of "@localpart:server.name" (or any sigil'd "x:server" id,
// e.g. "$opaque:server" event ids in room versions 1 and 2): everything after
// the first colon, validated.
absl::StatusOr<ServerName> ServerNameOfId(absl::string_view id);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_SERVER_NAME_H_
