#include "service/net/ip_filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/net/ip_address.h"

namespace keyverifier::net {
namespace {

IpAddress Ip(const std::string& s) {
  absl::StatusOr<IpAddress> a = ParseIpAddress(s);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : IpAddress();
}

// ::ffff:a.b.c.d as a resolver's sockaddr_in6 carries it: 16 raw bytes.
IpAddress RawV6(const std::string& text) {
  IpAddress a;
  EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), a.bytes.data()), 1) << text;
  return a;
}

TEST(IpAddressTest, ParsesBothFamiliesAndBrackets) {
  EXPECT_TRUE(Ip("192.0.2.1").v4);
  EXPECT_EQ(Ip("192.0.2.1").ToString(), "192.0.2.1");
  EXPECT_FALSE(Ip("2001:db8::1").v4);
  EXPECT_EQ(Ip("[2001:DB8:0::1]").ToString(), "2001:db8::1");
}

TEST(IpAddressTest, MappedIpv6IsIpv4) {
  IpAddress a = Ip("::ffff:10.1.2.3");
  EXPECT_TRUE(a.v4);
  EXPECT_EQ(a.ToString(), "10.1.2.3");
}

TEST(IpAddressTest, RefusesWhatIsNotAnAddress) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "example.org", "fe80::1%eth0",
                          "::1:", "[::1", "1.2.3.4:80"}) {
    EXPECT_FALSE(ParseIpAddress(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseIpAddress(std::string("1.2.3.4\0x", 9)).ok());
}

TEST(IpNetworkTest, ContainsByPrefix) {
  IpNetwork n = *ParseIpNetwork("10.0.0.0/8");
  EXPECT_TRUE(n.Contains(Ip("10.255.0.1")));
  EXPECT_FALSE(n.Contains(Ip("11.0.0.1")));
  EXPECT_FALSE(n.Contains(Ip("::ffff:11.0.0.1")));
  EXPECT_TRUE(n.Contains(Ip("::ffff:10.0.0.1")));
  IpNetwork odd = *ParseIpNetwork("100.64.0.0/10");
  EXPECT_TRUE(odd.Contains(Ip("100.127.255.255")));
  EXPECT_FALSE(odd.Contains(Ip("100.128.0.0")));
  IpNetwork v6 = *ParseIpNetwork("fc00::/7");
  EXPECT_TRUE(v6.Contains(Ip("fd12:3456::1")));
  EXPECT_FALSE(v6.Contains(Ip("fe00::1")));
  EXPECT_FALSE(v6.Contains(Ip("10.0.0.1")));
  EXPECT_TRUE(ParseIpNetwork("0.0.0.0/0")->Contains(Ip("8.8.8.8")));
  EXPECT_TRUE(ParseIpNetwork("192.0.2.7")->Contains(Ip("192.0.2.7")));
  EXPECT_FALSE(ParseIpNetwork("192.0.2.7")->Contains(Ip("192.0.2.8")));
}

TEST(IpNetworkTest, MappedNetworkIsIpv4) {
  IpNetwork n = *ParseIpNetwork("::ffff:10.0.0.0/104");
  EXPECT_EQ(n.ToString(), "10.0.0.0/8");
}

TEST(IpNetworkTest, ErrorsNameTheProblem) {
  absl::StatusOr<IpNetwork> host_bits = ParseIpNetwork("10.0.0.1/8");
  ASSERT_FALSE(host_bits.ok());
  EXPECT_NE(host_bits.status().message().find("did you mean 10.0.0.0/8"),
            std::string::npos)
      << host_bits.status();
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "::/129",
                          "foo/8", "10.0.0.0/8x"}) {
    EXPECT_FALSE(ParseIpNetwork(bad).ok()) << bad;
  }
}

TEST(IpFilterTest, DefaultDenylistCoversInternalRanges) {
  IpFilter f = *IpFilter::Create({});
  for (const char* denied :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fd00::1", "ff02::1", "::ffff:127.0.0.1",
        "::ffff:192.168.0.1", "64:ff9b::10.0.0.1", "64:ff9b::7f00:1"}) {
    EXPECT_FALSE(f.Allowed(Ip(denied))) << denied;
  }
  for (const char* allowed : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "2a00:1450::1",
                              "64:ff9b::8.8.8.8"}) {
    EXPECT_TRUE(f.Allowed(Ip(allowed))) << allowed;
  }
}

TEST(IpFilterTest, RefusalNamesTheNetwork) {
  IpFilter f = *IpFilter::Create({});
  std::optional<std::string> why = f.Refusal(Ip("10.9.8.7"));
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "10.9.8.7 is in denied network 10.0.0.0/8");
}

TEST(IpFilterTest, AllowlistWinsOverDenylist) {
  IpFilter::Options o;
  o.allowed = {"10.20.0.0/16", "::1"};
  o.denied = {"8.8.0.0/16"};
  IpFilter f = *IpFilter::Create(o);
  EXPECT_TRUE(f.Allowed(Ip("10.20.30.40")));
  EXPECT_FALSE(f.Allowed(Ip("10.21.0.1")));
  EXPECT_TRUE(f.Allowed(Ip("::1")));
  EXPECT_FALSE(f.Allowed(Ip("8.8.8.8")));
  EXPECT_TRUE(f.Allowed(Ip("9.9.9.9")));
}

TEST(IpFilterTest, WithoutDefaultsOnlyTheGivenNetworksAreDenied) {
  IpFilter::Options o;
  o.use_default_denylist = false;
  o.denied = {"192.0.2.0/24"};
  IpFilter f = *IpFilter::Create(o);
  EXPECT_TRUE(f.Allowed(Ip("127.0.0.1")));
  EXPECT_FALSE(f.Allowed(Ip("192.0.2.1")));
  EXPECT_TRUE(IpFilter::AllowAll().Allowed(Ip("127.0.0.1")));
}

TEST(IpFilterTest, BadEntryIsNamed) {
  IpFilter::Options o;
  o.allowed = {"10.0.0.0/8", "nonsense"};
  absl::StatusOr<IpFilter> f = IpFilter::Create(o);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("allowed[1]"), std::string::npos) << f.status();
}


TEST(IpAddressTest, RawMappedBytesBecomeIpv4) {
  const IpAddress raw = RawV6("::ffff:127.0.0.1");
  ASSERT_FALSE(raw.v4);
  EXPECT_EQ(raw.Normalized(), Ip("127.0.0.1"));
  EXPECT_EQ(IpAddress::V6(raw.bytes.data()), Ip("127.0.0.1"));
  EXPECT_EQ(IpAddress::V6(raw.bytes.data()).ToString(), "127.0.0.1");
  // Other IPv6 addresses stay what they are.
  EXPECT_EQ(RawV6("2001:db8::1").Normalized(), Ip("2001:db8::1"));
  EXPECT_FALSE(RawV6("::ffff:0:7f00:1").Normalized().v4);  // not the mapped prefix
  const uint8_t v4[4] = {192, 0, 2, 1};
  EXPECT_EQ(IpAddress::V4(v4), Ip("192.0.2.1"));
}

TEST(IpAddressTest, SocketAddressesAreNormalised) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr), 1);
  std::optional<IpAddress> a =
      IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->v4);
  EXPECT_EQ(a->ToString(), "10.1.2.3");
  ASSERT_EQ(inet_pton(AF_INET6, "2606:4700::1111", &in6.sin6_addr), 1);
  a = IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->ToString(), "2606:4700::1111");
  // Too short for its family.
  EXPECT_FALSE(IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6), 8));

  sockaddr_in in{};
  in.sin_family = AF_INET;
  ASSERT_EQ(inet_pton(AF_INET, "1.1.1.1", &in.sin_addr), 1);
  a = IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, Ip("1.1.1.1"));

  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_FALSE(IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&un), sizeof un));
  EXPECT_FALSE(IpAddress::FromSockaddr(nullptr, 0));
}

std::vector<std::string> Carried(const std::string& text) {
  std::vector<std::string> out;
  for (const EmbeddedIpv4& e : EmbeddedIpv4s(Ip(text))) {
    out.push_back(absl::StrCat(e.form, " ", e.address.ToString()));
  }
  return out;
}

TEST(IpAddressTest, EmbeddedIpv4Forms) {
  EXPECT_EQ(Carried("64:ff9b::7f00:1"), std::vector<std::string>{"NAT64 127.0.0.1"});
  EXPECT_EQ(Carried("2002:7f00:1::"), std::vector<std::string>{"6to4 127.0.0.1"});
  EXPECT_EQ(Carried("2002:c000:221:1::5"), std::vector<std::string>{"6to4 192.0.2.33"});
  // RFC 4380's example: server 65.54.227.120, client 192.0.2.45 (inverted).
  EXPECT_EQ(Carried("2001:0:4136:e378:8000:63bf:3fff:fdd2"),
            (std::vector<std::string>{"Teredo server 65.54.227.120",
                                      "Teredo client 192.0.2.45"}));
  EXPECT_EQ(Carried("::127.0.0.1"), std::vector<std::string>{"IPv4-compatible 127.0.0.1"});
  EXPECT_EQ(Carried("::2"), std::vector<std::string>{"IPv4-compatible 0.0.0.2"});
  for (const char* none : {"::", "::1", "::ffff:127.0.0.1", "127.0.0.1", "2001:db8::1",
                           "64:ff9b:1::7f00:1", "2001:1::1", "2003::1"}) {
    EXPECT_TRUE(Carried(none).empty()) << none;
  }
}

// RFC 6052 section 2.4's table: 192.0.2.33 under each prefix length.
TEST(IpAddressTest, Rfc6052Layouts) {
  const std::pair<const char*, const char*> kExamples[] = {
      {"2001:db8::/32", "2001:db8:c000:221::"},
      {"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
      {"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
      {"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
      {"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
      {"2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
  };
  for (const auto& [prefix, address] : kExamples) {
    IpNetwork p = *ParseIpNetwork(prefix);
    EXPECT_TRUE(IsRfc6052Prefix(p)) << prefix;
    std::optional<IpAddress> v4 = Rfc6052Embedded(Ip(address), p);
    ASSERT_TRUE(v4.has_value()) << prefix;
    EXPECT_EQ(v4->ToString(), "192.0.2.33") << prefix;
  }
  EXPECT_FALSE(Rfc6052Embedded(Ip("2001:db9::1"), *ParseIpNetwork("2001:db8::/32")));
  EXPECT_FALSE(IsRfc6052Prefix(*ParseIpNetwork("2001:db8::/80")));
  EXPECT_FALSE(IsRfc6052Prefix(*ParseIpNetwork("10.0.0.0/8")));
}

TEST(IpFilterTest, RawMappedAddressIsJudgedAsIpv4) {
  IpFilter f = *IpFilter::Create({});
  std::optional<std::string> why = f.Refusal(RawV6("::ffff:127.0.0.1"));
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "127.0.0.1 is in denied network 127.0.0.0/8");
  EXPECT_TRUE(f.Allowed(RawV6("::ffff:1.1.1.1")));
  // A custom IPv4 rule applies too.
  IpFilter::Options o;
  o.use_default_denylist = false;
  o.denied = {"1.1.1.0/24"};
  EXPECT_FALSE(IpFilter::Create(o)->Allowed(RawV6("::ffff:1.1.1.1")));
}

TEST(IpFilterTest, RefusalOfAnEmbeddedAddressNamesBoth) {
  IpFilter f = *IpFilter::Create({});
  EXPECT_EQ(f.Refusal(Ip("2002:7f00:1::")),
            "2002:7f00:1:: carries 127.0.0.1 (6to4), which is in denied network 127.0.0.0/8");
  EXPECT_EQ(f.Refusal(Ip("64:ff9b::a00:1")),
            "64:ff9b::a00:1 carries 10.0.0.1 (NAT64), which is in denied network 10.0.0.0/8");
  EXPECT_EQ(f.Refusal(Ip("::169.254.169.254")),
            "::169.254.169.254 carries 169.254.169.254 (IPv4-compatible), which is in "
            "denied network 169.254.0.0/16");
  EXPECT_EQ(f.Refusal(Ip("2001:0:4136:e378:8000:63bf:3fff:fdd2")),
            "2001:0:4136:e378:8000:63bf:3fff:fdd2 is in denied network 2001::/32");
}

// Without the default denylist Teredo is judged by both addresses it
// carries.
TEST(IpFilterTest, TeredoIsRefusedIfEitherEndIs) {
  IpFilter::Options o;
  o.use_default_denylist = false;
  o.denied = {"127.0.0.0/8"};
  IpFilter f = *IpFilter::Create(o);
  // Server 127.0.0.1, client 1.1.1.1 (inverted: fefe:fefe).
  std::optional<std::string> why = f.Refusal(Ip("2001:0:7f00:1::fefe:fefe"));
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("carries 127.0.0.1 (Teredo server)"), std::string::npos) << *why;
  // Server 1.1.1.1, client 127.0.0.1 (inverted: 80ff:fffe).
  why = f.Refusal(Ip("2001:0:101:101::80ff:fffe"));
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("carries 127.0.0.1 (Teredo client)"), std::string::npos) << *why;
  EXPECT_TRUE(f.Allowed(Ip("2001:0:101:101::fefe:fefe")));
  // The default denylist refuses Teredo whatever it carries.
  EXPECT_FALSE(IpFilter::Create({})->Allowed(Ip("2001:0:101:101::fefe:fefe")));
}

TEST(IpFilterTest, AllowedEmbeddedAddressIsNotRefusedForIt) {
  IpFilter::Options o;
  o.allowed = {"10.20.0.0/16"};
  IpFilter f = *IpFilter::Create(o);
  EXPECT_TRUE(f.Allowed(Ip("2002:a14:1::1")));       // 10.20.0.1
  EXPECT_TRUE(f.Allowed(Ip("64:ff9b::10.20.0.1")));
  EXPECT_FALSE(f.Allowed(Ip("2002:a15:1::1")));      // 10.21.0.1
}

TEST(IpFilterTest, OperatorNat64PrefixesAreJudgedByWhatTheyCarry) {
  // RFC 6052's example prefixes, one filter each: 2001:db8::/32 is denied
  // by default, but a prefix the operator names is judged by its IPv4.
  const char* kPrefixes[] = {"2001:db8::/32",         "2001:db8:100::/40",
                             "2001:db8:122::/48",     "2001:db8:122:300::/56",
                             "2001:db8:122:344::/64", "2001:db8:122:344::/96",
                             "64:ff9b:1::/48",        "fd00:64::/96"};
  for (const char* prefix : kPrefixes) {
    SCOPED_TRACE(prefix);
    IpFilter::Options o;
    o.nat64_prefixes = {prefix};
    IpFilter f = *IpFilter::Create(o);
    const IpNetwork p = *ParseIpNetwork(prefix);
    IpAddress loopback = p.base, public_v4 = p.base;
    // Lay 127.0.0.1 and 1.1.1.1 into the prefix as RFC 6052 does.
    const uint8_t lo[4] = {127, 0, 0, 1}, pub[4] = {1, 1, 1, 1};
    for (int i = 0, at = p.prefix_len / 8; i < 4; ++i, ++at) {
      if (at == 8 && p.prefix_len < 96) ++at;
      loopback.bytes[at] = lo[i];
      public_v4.bytes[at] = pub[i];
    }
    EXPECT_EQ(Rfc6052Embedded(loopback, p), Ip("127.0.0.1"));
    std::optional<std::string> why = f.Refusal(loopback);
    ASSERT_TRUE(why.has_value());
    EXPECT_EQ(*why, absl::StrCat(loopback.ToString(),
                                 " carries 127.0.0.1 (NAT64), which is in denied network "
                                 "127.0.0.0/8"));
    EXPECT_TRUE(f.Allowed(public_v4)) << public_v4.ToString();
    // Without the prefix configured, the default denylist refuses both.
    EXPECT_FALSE(IpFilter::Create({})->Allowed(public_v4)) << public_v4.ToString();
  }
  // Outside the configured /96, the local-use /48 is still refused.
  IpFilter::Options o;
  o.nat64_prefixes = {"64:ff9b:1::/96"};
  IpFilter f = *IpFilter::Create(o);
  EXPECT_TRUE(f.Allowed(Ip("64:ff9b:1::1.1.1.1")));
  EXPECT_FALSE(f.Allowed(Ip("64:ff9b:1::127.0.0.1")));
  EXPECT_FALSE(f.Allowed(Ip("64:ff9b:1:0:1::1.1.1.1")));
  // The operator's own denylist still refuses the prefix.
  o.denied = {"64:ff9b:1::/96"};
  EXPECT_FALSE(IpFilter::Create(o)->Allowed(Ip("64:ff9b:1::1.1.1.1")));
}

TEST(IpFilterTest, BadNat64PrefixIsNamed) {
  for (const char* bad : {"64:ff9b::/80", "10.0.0.0/8", "::ffff:0:0/96", "64:ff9b::1/96",
                          "nonsense"}) {
    IpFilter::Options o;
    o.nat64_prefixes = {"64:ff9b::/96", bad};
    absl::StatusOr<IpFilter> f = IpFilter::Create(o);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(f.status()));
    EXPECT_NE(f.status().message().find("nat64_prefixes[1]"), std::string::npos)
        << f.status();
  }
}

// The IANA IPv4 Special-Purpose Address Registry and IPv6 Special-Purpose
// Address Registry (iana-ipv4-special-registry, iana-ipv6-special-registry),
// every entry with its "Globally Reachable" column, and a few ranges the
// registries leave to others (multicast, site-local). An entry that is not
// globally reachable is refused by the default filter; a globally
// reachable one is allowed, unless `why` says otherwise; N/A entries say
// what the filter does with them.
struct RegistryEntry {
  const char* network;
  const char* name;
  const char* globally_reachable;  // "True", "False", "N/A", "" (not in the registries)
  const char* sample;              // an address in the network
  bool refused;                    // by the default filter
  const char* why;                 // when refused is not what the column says
};

const RegistryEntry kIpv4Registry[] = {
    {"0.0.0.0/8", "\"This network\"", "False", "0.1.2.3", true, ""},
    {"0.0.0.0/32", "\"This host on this network\"", "False", "0.0.0.0", true, ""},
    {"10.0.0.0/8", "Private-Use", "False", "10.1.2.3", true, ""},
    {"100.64.0.0/10", "Shared Address Space", "False", "100.100.1.1", true, ""},
    {"127.0.0.0/8", "Loopback", "False", "127.0.0.1", true, ""},
    {"169.254.0.0/16", "Link Local", "False", "169.254.169.254", true, ""},
    {"172.16.0.0/12", "Private-Use", "False", "172.20.0.1", true, ""},
    {"192.0.0.0/24", "IETF Protocol Assignments", "False", "192.0.0.100", true, ""},
    {"192.0.0.0/29", "IPv4 Service Continuity Prefix", "False", "192.0.0.2", true, ""},
    {"192.0.0.8/32", "IPv4 dummy address", "False", "192.0.0.8", true, ""},
    {"192.0.0.9/32", "Port Control Protocol Anycast", "True", "192.0.0.9", true,
     "its nearest instance is the local NAT gateway"},
    {"192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "True", "192.0.0.10",
     false, ""},
    {"192.0.0.170/32", "NAT64/DNS64 Discovery", "False", "192.0.0.170", true, ""},
    {"192.0.0.171/32", "NAT64/DNS64 Discovery", "False", "192.0.0.171", true, ""},
    {"192.0.2.0/24", "Documentation (TEST-NET-1)", "False", "192.0.2.1", true, ""},
    {"192.31.196.0/24", "AS112-v4", "True", "192.31.196.1", false, ""},
    {"192.52.193.0/24", "AMT", "True", "192.52.193.1", false, ""},
    {"192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "N/A", "192.88.99.1", true,
     "deprecated"},
    {"192.168.0.0/16", "Private-Use", "False", "192.168.1.1", true, ""},
    {"192.175.48.0/24", "Direct Delegation AS112 Service", "True", "192.175.48.1", false, ""},
    {"198.18.0.0/15", "Benchmarking", "False", "198.19.0.1", true, ""},
    {"198.51.100.0/24", "Documentation (TEST-NET-2)", "False", "198.51.100.1", true, ""},
    {"203.0.113.0/24", "Documentation (TEST-NET-3)", "False", "203.0.113.1", true, ""},
    {"240.0.0.0/4", "Reserved", "False", "240.0.0.1", true, ""},
    {"255.255.255.255/32", "Limited Broadcast", "False", "255.255.255.255", true, ""},
    {"224.0.0.0/4", "Multicast (IPv4 Multicast Address Space Registry)", "", "224.0.0.251",
     true, "multicast"},
};

const RegistryEntry kIpv6Registry[] = {
    {"::1/128", "Loopback Address", "False", "::1", true, ""},
    {"::/128", "Unspecified Address", "False", "::", true, ""},
    {"::ffff:0:0/96", "IPv4-mapped Address", "False", "::ffff:1.1.1.1", false,
     "judged as the IPv4 address it maps to (below)"},
    {"64:ff9b::/96", "IPv4-IPv6 Translat.", "True", "64:ff9b::1.1.1.1", false,
     "judged by the IPv4 address it carries (below)"},
    {"64:ff9b:1::/48", "IPv4-IPv6 Translat.", "False", "64:ff9b:1::1", true, ""},
    {"100::/64", "Discard-Only Address Block", "False", "100::1", true, ""},
    {"100:0:0:1::/64", "Dummy IPv6 Prefix", "False", "100:0:0:1::1", true, ""},
    {"2001::/23", "IETF Protocol Assignments", "False", "2001:5::1", true, ""},
    {"2001::/32", "TEREDO", "N/A", "2001:0:4136:e378:8000:63bf:3fff:fdd2", true,
     "tunnels into hosts behind NAT; no Matrix server lives there"},
    {"2001:1::1/128", "Port Control Protocol Anycast", "True", "2001:1::1", true,
     "its nearest instance is the local NAT gateway"},
    {"2001:1::2/128", "Traversal Using Relays around NAT Anycast", "True", "2001:1::2", false,
     ""},
    {"2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "True", "2001:1::3", true,
     "its nearest instance is a border router on the local network"},
    {"2001:2::/48", "Benchmarking", "False", "2001:2::1", true, ""},
    {"2001:3::/32", "AMT", "True", "2001:3::1", false, ""},
    {"2001:4:112::/48", "AS112-v6", "True", "2001:4:112::1", false, ""},
    {"2001:10::/28", "Deprecated (previously ORCHID)", "N/A", "2001:10::1", true,
     "deprecated"},
    {"2001:20::/28", "ORCHIDv2", "True", "2001:20::1", false, ""},
    {"2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "True",
     "2001:30::1", false, ""},
    {"2001:db8::/32", "Documentation", "False", "2001:db8::1", true, ""},
    {"2002::/16", "6to4", "N/A", "2002:101:101::1", false,
     "judged by the IPv4 address it carries (below)"},
    {"2620:4f:8000::/48", "Direct Delegation AS112 Service", "True", "2620:4f:8000::1", false,
     ""},
    {"3fff::/20", "Documentation", "False", "3fff::1", true, ""},
    {"5f00::/16", "Segment Routing (SRv6) SIDs", "False", "5f00::1", true, ""},
    {"fc00::/7", "Unique-Local", "False", "fd00::1", true, ""},
    {"fe80::/10", "Link-Local Unicast", "False", "fe80::1", true, ""},
    {"fec0::/10", "Site-local (deprecated; IPv6 Address Space Registry)", "", "fec0::1", true,
     "deprecated"},
    {"ff00::/8", "Multicast (IPv6 Address Space Registry)", "", "ff02::1", true, "multicast"},
};

void CheckEntry(const IpFilter& f, const RegistryEntry& e) {
  SCOPED_TRACE(absl::StrCat(e.network, " ", e.name, " (globally reachable: ",
                            e.globally_reachable, ")"));
  const IpAddress sample = Ip(e.sample);
  EXPECT_TRUE(ParseIpNetwork(e.network)->Contains(sample)) << e.sample;
  // The table itself: refused exactly when the registry says the entry is
  // not globally reachable, or it says why not.
  if (*e.why == '\0') {
    EXPECT_EQ(e.refused, std::string(e.globally_reachable) == "False");
  }
  EXPECT_EQ(!f.Allowed(sample), e.refused) << e.sample << ": " << f.Refusal(sample).value_or("");
}

// The IPv4 address `v4` in each IPv6 form that carries one.
std::vector<std::string> Ipv4Forms(const std::string& v4) {
  uint8_t b[4];
  EXPECT_EQ(inet_pton(AF_INET, v4.c_str(), b), 1) << v4;
  char sixtofour[64];
  std::snprintf(sixtofour, sizeof sixtofour, "2002:%x:%x::1", b[0] << 8 | b[1], b[2] << 8 | b[3]);
  return {"::ffff:" + v4, "64:ff9b::" + v4, sixtofour, "::" + v4};
}

TEST(IpFilterTest, Ipv4SpecialPurposeRegistry) {
  IpFilter f = *IpFilter::Create({});
  for (const RegistryEntry& e : kIpv4Registry) {
    CheckEntry(f, e);
    // The same verdict whatever IPv6 form carries it, and a refusal names
    // the IPv4 address.
    for (const std::string& form : Ipv4Forms(e.sample)) {
      SCOPED_TRACE(form);
      std::optional<std::string> why = f.Refusal(Ip(form));
      EXPECT_EQ(why.has_value(), e.refused) << why.value_or("");
      const bool itself = form == "::0.0.0.0" || form == "::0.0.0.1";  // :: and ::1
      if (why && !itself) {
        EXPECT_NE(why->find(absl::StrCat(e.sample, " ")), std::string::npos) << *why;
      }
    }
  }
}

TEST(IpFilterTest, Ipv6SpecialPurposeRegistry) {
  IpFilter f = *IpFilter::Create({});
  for (const RegistryEntry& e : kIpv6Registry) CheckEntry(f, e);
  // The forms judged by what they carry refuse what they carry.
  for (const char* carrier : {"::ffff:127.0.0.1", "64:ff9b::127.0.0.1", "2002:7f00:1::1"}) {
    EXPECT_FALSE(f.Allowed(Ip(carrier))) << carrier;
  }
}

// Ordinary public addresses (literal data only) are allowed in every form
// but Teredo, which is refused as a form.
TEST(IpFilterTest, PublicAddressesAreAllowedInEveryForm) {
  IpFilter f = *IpFilter::Create({});
  for (const char* v4 : {"1.1.1.1", "9.9.9.9", "172.32.0.1", "100.128.0.1"}) {
    EXPECT_TRUE(f.Allowed(Ip(v4))) << v4;
    for (const std::string& form : Ipv4Forms(v4)) {
      EXPECT_TRUE(f.Allowed(Ip(form))) << form << ": " << f.Refusal(Ip(form)).value_or("");
    }
  }
  for (const char* v6 : {"2606:4700::1111", "2a00:1450::1", "2003::1", "2620:fe::fe"}) {
    EXPECT_TRUE(f.Allowed(Ip(v6))) << v6;
  }
  EXPECT_FALSE(f.Allowed(Ip("2001:0:101:101::fefe:fefe")));  // Teredo 1.1.1.1 <-> 1.1.1.1
}

}  // namespace
}  // namespace keyverifier::net
