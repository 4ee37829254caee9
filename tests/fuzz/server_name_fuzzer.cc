// Server names and the ids that carry them (service/core/server_name.h).
//
// Invariants:
// - An accepted name keeps the input as its text (str()). Written back from
//   its parts (host, brackets for IPv6, ":port") it is the input, unless the
//   port had leading zeros; either way that parses to the same parts.
//   Parsing is deterministic.
// - The kind is right: an IPv4 host is a dotted quad inet_pton accepts, an
//   IPv6 host one it accepts in brackets, a DNS name only [0-9A-Za-z.-].
// - ServerNameOfId accepts an id exactly when what follows its first colon
//   is a server name, and returns that text.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/core/server_name.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::core {
namespace {

// The name written back from its parts (host, kind, port).
std::string Write(const ServerName& n) {
  std::string out = n.kind() == ServerName::HostKind::kIPv6 ? absl::StrCat("[", n.host(), "]")
                                                            : std::string(n.host());
  if (n.port()) absl::StrAppend(&out, ":", *n.port());
  return out;
}

bool Same(const ServerName& a, const ServerName& b) {
  return a.host() == b.host() && a.kind() == b.kind() && a.port() == b.port();
}

std::string Describe(const absl::StatusOr<ServerName>& n) {
  if (!n.ok()) return n.status().ToString();
  return absl::StrCat(Write(*n), " kind ", static_cast<int>(n->kind()));
}

}  // namespace
}  // namespace keyverifier::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::core;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const absl::StatusOr<ServerName> name = ServerName::Parse(text);
  FUZZ_CHECK_EQ(Describe(name), Describe(ServerName::Parse(text)));
  if (name.ok()) {
    FUZZ_CHECK_EQ(name->str(), std::string(text));  // kept as written
    const std::string written = Write(*name);
    const absl::StatusOr<ServerName> again = ServerName::Parse(written);
    FUZZ_CHECK_MSG(again.ok() && Same(*again, *name), Describe(again));
    absl::string_view port_text;
    if (name->port()) {
      const size_t at = name->kind() == ServerName::HostKind::kIPv6 ? text.find("]:") + 1
                                                                  : text.rfind(':');
      port_text = text.substr(at + 1);
    }
    const bool leading_zero = port_text.size() > 1 && port_text[0] == '0';
    if (!leading_zero) FUZZ_CHECK_EQ(written, std::string(text));

    const std::string host(name->host());
    FUZZ_CHECK(!host.empty());
    FUZZ_CHECK(host.find('\0') == std::string::npos);
    unsigned char buf[16];
    switch (name->kind()) {
      case ServerName::HostKind::kIPv4:
        FUZZ_CHECK(inet_pton(AF_INET, host.c_str(), buf) == 1);
        break;
      case ServerName::HostKind::kIPv6:
        FUZZ_CHECK(inet_pton(AF_INET6, host.c_str(), buf) == 1);
        break;
      case ServerName::HostKind::kDnsName:
        FUZZ_CHECK(host.size() <= 255);
        for (char c : host) {
          FUZZ_CHECK(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-');
        }
        break;
    }
  }

  const absl::StatusOr<ServerName> server = ServerNameOfId(text);
  const size_t colon = text.find(':');
  if (server.ok()) {
    FUZZ_CHECK(colon != absl::string_view::npos);
    FUZZ_CHECK_EQ(server->str(), std::string(text.substr(colon + 1)));
    FUZZ_CHECK(ServerName::Parse(server->str()).ok());
  } else if (colon != absl::string_view::npos && text.size() >= 2) {
    FUZZ_CHECK(!ServerName::Parse(text.substr(colon + 1)).ok());
  }
  return 0;
}
