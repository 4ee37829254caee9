#include "service/core/server_name.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash_testing.h"

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

TEST(ServerNameParseTest, ValidNames) {
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
    absl::StatusOr<ServerName> parsed = ServerName::Parse(c.name);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->host(), c.host);
    EXPECT_EQ(parsed->kind(), c.kind);
    EXPECT_EQ(parsed->port(), c.port);
    EXPECT_EQ(parsed->str(), c.name);  // kept exactly as written
    EXPECT_EQ(parsed->view(), c.name);
    EXPECT_EQ(parsed->is_ip_literal(), c.kind != Kind::kDnsName);
  }
}

TEST(ServerNameParseTest, InvalidNames) {
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
    absl::StatusOr<ServerName> parsed = ServerName::Parse(name);
    EXPECT_FALSE(parsed.ok()) << "\"" << name << "\" parsed as host \""
                              << parsed->host() << "\"";
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
          << name;
    }
  }
}

TEST(ServerNameParseTest, ErrorsQuoteTheNameSafely) {
  EXPECT_EQ(ServerName::Parse("exa_mple.org").status().message(),
            "invalid server name \"exa_mple.org\": character '_' is not "
            "allowed in a host name");
  EXPECT_EQ(ServerName::Parse("example.org:65536").status().message(),
            "invalid server name \"example.org:65536\": port \"65536\" is not "
            "1-5 digits <= 65535");
  EXPECT_EQ(ServerName::Parse("[::1").status().message(),
            "invalid server name \"[::1\": unclosed '['");
  // Unprintable bytes are escaped, not copied into the message.
  EXPECT_EQ(ServerName::Parse(std::string("a\0b\n", 4)).status().message(),
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
    absl::StatusOr<ServerName> server = ServerNameOfId(c.id);
    ASSERT_TRUE(server.ok()) << c.id << ": " << server.status();
    EXPECT_EQ(server->str(), c.server) << c.id;
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
    absl::StatusOr<ServerName> server = ServerNameOfId(id);
    EXPECT_FALSE(server.ok()) << id << " gave " << server->str();
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

ServerName Parsed(absl::string_view text) {
  absl::StatusOr<ServerName> n = ServerName::Parse(text);
  EXPECT_TRUE(n.ok()) << n.status();
  return *std::move(n);
}

TEST(ServerNameTest, StrGivesTheTextThatParsesToTheSameName) {
  for (const char* text : {"example.org", "Example.ORG:8448", "example.org:08448", "1.2.3.4:80",
                           "[::1]", "[2001:DB8::a]:443"}) {
    SCOPED_TRACE(text);
    const ServerName n = Parsed(text);
    const ServerName again = Parsed(n.str());
    EXPECT_EQ(again, n);
    EXPECT_EQ(again.str(), text);
    EXPECT_EQ(again.host(), n.host());
    EXPECT_EQ(again.kind(), n.kind());
    EXPECT_EQ(again.port(), n.port());
  }
}

// The text as written is the identity: a leading zero or another case makes
// another name, as it makes another key in signatures and in the store.
TEST(ServerNameTest, EqualityAndOrderFollowTheText) {
  EXPECT_EQ(Parsed("example.org"), Parsed("example.org"));
  EXPECT_NE(Parsed("example.org"), Parsed("example.org:8448"));
  EXPECT_NE(Parsed("example.org:8448"), Parsed("example.org:08448"));
  EXPECT_NE(Parsed("example.org"), Parsed("Example.org"));
  const std::vector<std::string> texts = {"b.example", "a.example:80", "[::1]", "1.2.3.4",
                                          "a.example"};
  std::vector<ServerName> names;
  for (const std::string& t : texts) names.push_back(Parsed(t));
  std::sort(names.begin(), names.end());
  std::vector<std::string> sorted_texts = texts;
  std::sort(sorted_texts.begin(), sorted_texts.end());
  std::vector<std::string> sorted_names;
  for (const ServerName& n : names) sorted_names.push_back(n.str());
  EXPECT_EQ(sorted_names, sorted_texts);
  EXPECT_FALSE(Parsed("a.example") < Parsed("a.example"));
}

TEST(ServerNameTest, HashesConsistentlyWithEquality) {
  EXPECT_TRUE(absl::VerifyTypeImplementsAbslHashCorrectly({
      Parsed("example.org"),
      Parsed("example.org:8448"),
      Parsed("example.org:08448"),
      Parsed("Example.org"),
      Parsed("1.2.3.4"),
      Parsed("[::1]:8448"),
  }));
  absl::flat_hash_map<ServerName, int> m;
  m[Parsed("a.example")] = 1;
  m[Parsed("b.example:8448")] = 2;
  m[Parsed("a.example")] += 10;
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at(Parsed("a.example")), 11);
  EXPECT_EQ(m.count(Parsed("b.example")), 0u);
  std::map<ServerName, int> ordered = {{Parsed("b.example"), 2}, {Parsed("a.example"), 1}};
  EXPECT_EQ(ordered.begin()->first.str(), "a.example");
}

TEST(ServerNameTest, HostOfABracketedLiteralHasNoBrackets) {
  const ServerName n = Parsed("[2001:db8::1]:8448");
  EXPECT_EQ(n.host(), "2001:db8::1");
  EXPECT_EQ(n.kind(), Kind::kIPv6);
  EXPECT_EQ(n.port(), 8448);
}

TEST(ServerNameTest, WithPortNamesTheSameHostOnThatPort) {
  EXPECT_EQ(Parsed("example.org").WithPort(443), Parsed("example.org:443"));
  EXPECT_EQ(Parsed("example.org:8448").WithPort(443), Parsed("example.org:443"));
  EXPECT_EQ(Parsed("1.2.3.4").WithPort(80), Parsed("1.2.3.4:80"));
  const ServerName v6 = Parsed("[::1]:8448").WithPort(443);
  EXPECT_EQ(v6, Parsed("[::1]:443"));
  EXPECT_EQ(v6.host(), "::1");
  EXPECT_EQ(v6.kind(), Kind::kIPv6);
  EXPECT_EQ(v6.port(), 443);
}

TEST(ServerNameTest, CopiesAreEqualAndIndependent) {
  ServerName a = Parsed("[::1]:8448");
  ServerName b = a;
  EXPECT_EQ(a, b);
  a = Parsed("example.org");
  EXPECT_EQ(b.str(), "[::1]:8448");
  EXPECT_EQ(b.host(), "::1");  // the view follows the copy's own text
  ServerName c = std::move(b);
  EXPECT_EQ(c.host(), "::1");
  EXPECT_EQ(c.port(), 8448);
}

}  // namespace
}  // namespace keyverifier::core
