#include "service/net/ip_filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
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

}  // namespace
}  // namespace keyverifier::net
