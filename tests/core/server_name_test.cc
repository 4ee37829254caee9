#include "service/core/server_name.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyverifier::core {
namespace {

using ::testing::HasSubstr;
using Kind = ServerName::HostKind;

struct Valid {
  std::string name;
  std::string host;
  Kind kind;
  std::optional<uint16_t> port;
};

TEST(ParseServerNameTest, ValidNames) {
  const Valid cases[] = {
      // The spec's own examples (Matrix spec appendices, "Server Name").
      {"matrix.org", "matrix.org", Kind::kDnsName, std::nullopt},
      {"matrix.org:8888", "matrix.org", Kind::kDnsName, 8888},
      {"1.2.3.4", "1.2.3.4", Kind::kIPv4, std::nullopt},
      {"1.2.3.4:1234", "1.2.3.4", Kind::kIPv4, 1234},
      {"[1234:5678::abcd]", "1234:5678::abcd", Kind::kIPv6, std::nullopt},
      {"[1234:5678::abcd]:5678", "1234:5678::abcd", Kind::kIPv6, 5678},
      // DNS names.
      {"localhost", "localhost", Kind::kDnsName, std::nullopt},
      {"a", "a", Kind::kDnsName, std::nullopt},
      {"my-server.example.org", "my-server.example.org", Kind::kDnsName,
       std::nullopt},
      {"Matrix.ORG", "Matrix.ORG", Kind::kDnsName, std::nullopt},  // kept as is
      {"xn--bcher-kva.example", "xn--bcher-kva.example", Kind::kDnsName,
       std::nullopt},
      {std::string(255, 'a'), std::string(255, 'a'), Kind::kDnsName,
       std::nullopt},
      // Digits and dots that are no IPv4 address are still a dns-name.
      {"1.2.3.256", "1.2.3.256", Kind::kDnsName, std::nullopt},
      {"1.2.3", "1.2.3", Kind::kDnsName, std::nullopt},
      // Ports: 1 to 5 digits, at most 65535.
      {"example.org:1", "example.org", Kind::kDnsName, 1},
      {"example.org:0", "example.org", Kind::kDnsName, 0},
      {"example.org:8448", "example.org", Kind::kDnsName, 8448},
      {"example.org:08448", "example.org", Kind::kDnsName, 8448},
      {"example.org:65535", "example.org", Kind::kDnsName, 65535},
      // IP literals.
      {"127.0.0.1:8008", "127.0.0.1", Kind::kIPv4, 8008},
      {"255.255.255.255", "255.255.255.255", Kind::kIPv4, std::nullopt},
      {"[::1]", "::1", Kind::kIPv6, std::nullopt},
      {"[::1]:80", "::1", Kind::kIPv6, 80},
      {"[::]", "::", Kind::kIPv6, std::nullopt},
      {"[::ffff:1.2.3.4]:443", "::ffff:1.2.3.4", Kind::kIPv6, 443},
      {"[2001:DB8::A]", "2001:DB8::A", Kind::kIPv6, std::nullopt},
      {"[0000:0000:0000:0000:0000:ffff:255.255.255.255]",
       "0000:0000:0000:0000:0000:ffff:255.255.255.255", Kind::kIPv6,
       std::nullopt},  // 45 characters, the grammar's maximum
  };
  for (const Valid& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<ServerName> parsed = ParseServerName(c.name);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->host, c.host);
    EXPECT_EQ(parsed->kind, c.kind);
    EXPECT_EQ(parsed->port, c.port);
  }
}

TEST(ParseServerNameTest, InvalidNames) {
  const std::string cases[] = {
      "",
      // Ports.
      "example.org:",        // no digits
      "example.org:123456",  // six digits
      "example.org:65536",
      "example.org:99999",
      "example.org:+80",
      "example.org: 80",
      "example.org:80 ",
      "example.org:-1",
      "example.org:8a",
      "example.org:80:90",
      "[::1]:",
      "[::1]:65536",
      "[::1]:123456",
      ":80",  // no host
      // Characters a dns-name cannot have.
      "exa_mple.org",
      "exa mple.org",
      " example.org",
      "example.org/",
      "example.org/path",
      "user@example.org",
      "ex\xc3\xa4mple.org",  // non-ASCII (must be punycode)
      std::string(256, 'a'),
      // IPv6.
      "[::1",
      "[::1:80",
      "::1",  // IPv6 without brackets
      "1234:5678::abcd",
      "1234:5678::abcd:80",
      "[::1]x",
      "[::1]]",
      "[::1]:80]",
      "[]",
      "[:]",
      "[example.org]",
      "[1.2.3.4]",
      "[::g]",
      "[1:2:3:4:5:6:7:8:9]",
      "[fe80::1%eth0]",  // zone ids are not in the grammar
      "[ ::1]",
      "[0000:0000:0000:0000:0000:ffff:255.255.255.2555]",  // 46 characters
      // Embedded NULs must not hide the rest of the name from the checks.
      std::string("[::1\0evil]", 10),
      std::string("[::1\0]", 6),
      std::string("[::1]\0", 6),
      std::string("example.org\0", 12),
      std::string("1.2.3.4\0.evil", 13),
      std::string("example.org:80\0", 15),
  };
  for (const std::string& name : cases) {
    absl::StatusOr<ServerName> parsed = ParseServerName(name);
    EXPECT_FALSE(parsed.ok()) << "\"" << name << "\" parsed as host \""
                              << parsed->host << "\"";
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
          << name;
    }
  }
}

TEST(ParseServerNameTest, ErrorsQuoteTheNameSafely) {
  EXPECT_EQ(ParseServerName("exa_mple.org").status().message(),
            "invalid server name \"exa_mple.org\": character '_' is not "
            "allowed in a host name");
  EXPECT_EQ(ParseServerName("example.org:65536").status().message(),
            "invalid server name \"example.org:65536\": port \"65536\" is not "
            "1-5 digits <= 65535");
  EXPECT_EQ(ParseServerName("[::1").status().message(),
            "invalid server name \"[::1\": unclosed '['");
  // Unprintable bytes are escaped, not copied into the message.
  EXPECT_EQ(ParseServerName(std::string("a\0b\n", 4)).status().message(),
            "invalid server name \"a\\000b\\n\": character '\\000' is not "
            "allowed in a host name");
}

TEST(ServerNameOfIdTest, TakesEverythingAfterTheFirstColon) {
  struct Case {
    const char* id;
    const char* server;
  };
  const Case cases[] = {
      {"@a:example.org", "example.org"},
      {"@a:example.org:8448", "example.org:8448"},
      {"@a:[::1]:80", "[::1]:80"},
      {"@a:[::1]", "[::1]"},
      {"@a:1.2.3.4", "1.2.3.4"},
      {"$opaque_id:matrix.org", "matrix.org"},  // room versions 1 and 2
      {"@:example.org", "example.org"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> server = ServerNameOfId(c.id);
    ASSERT_TRUE(server.ok()) << c.id << ": " << server.status();
    EXPECT_EQ(*server, c.server) << c.id;
  }
}

TEST(ServerNameOfIdTest, RejectsIdsWithoutAValidServerName) {
  const std::string cases[] = {
      "",
      "@",
      "@aexample.org",  // missing colon
      "@a:",
      "@a:exa_mple.org",
      "@a:example.org:",
      "@a:example.org:65536",
      "@a:::1",  // the server part "::1" is IPv6 without brackets
      "@a:[::1",
      std::string("@a:[::1\0evil]", 13),
  };
  for (const std::string& id : cases) {
    absl::StatusOr<std::string> server = ServerNameOfId(id);
    EXPECT_FALSE(server.ok()) << id << " gave " << *server;
    if (!server.ok()) {
      EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_EQ(ServerNameOfId("@aexample.org").status().message(),
            "\"@aexample.org\" has no \":server.name\" part");
  EXPECT_THAT(ServerNameOfId("@a:exa_mple.org").status().message(),
              HasSubstr("in \"@a:exa_mple.org\": invalid server name "
                        "\"exa_mple.org\""));
}

}  // namespace
}  // namespace keyverifier::core
