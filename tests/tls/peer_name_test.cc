#include "service/tls/peer_name.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyverifier::tls {
namespace {

using ::testing::HasSubstr;

TEST(PeerNameTest, DnsNamesAreLowerCasedWithoutTrailingDot) {
  absl::StatusOr<PeerName> p = PeerName::Parse("Matrix.Example.ORG.");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->is_ip());
  EXPECT_EQ(p->text, "matrix.example.org");
}

TEST(PeerNameTest, IpLiterals) {
  absl::StatusOr<PeerName> v4 = PeerName::Parse("192.0.2.1");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->is_ip());
  EXPECT_EQ(v4->ip_bytes.size(), 4u);
  absl::StatusOr<PeerName> v6 = PeerName::Parse("[2001:DB8:0::1]");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->text, "2001:db8::1");
  EXPECT_EQ(v6->ip_bytes.size(), 16u);
  EXPECT_FALSE(PeerName::ParseIp("example.org").ok());
  EXPECT_FALSE(PeerName::ParseIp("[192.0.2.1]").ok());  // brackets are for IPv6
}

TEST(PeerNameTest, AnIpv4AddressWithATrailingDotIsNoDnsName) {
  // Else "192.0.2.1." would be a DNS name "192.0.2.1", matched against DNS
  // SANs although the text names an address.
  EXPECT_THAT(PeerName::Parse("192.0.2.1.").status().message(),
              HasSubstr("is an IPv4 address, not a DNS name"));
  EXPECT_FALSE(PeerName::ParseDns("192.0.2.1").ok());
  // Numeric labels are otherwise fine.
  EXPECT_TRUE(PeerName::Parse("1.2.3.example.").ok());
}

TEST(PeerNameTest, RefusesPortsAndBadLabels) {
  EXPECT_THAT(PeerName::Parse("example.org:8448").status().message(),
              HasSubstr("without a port"));
  EXPECT_THAT(PeerName::Parse("a..b").status().message(), HasSubstr("label"));
  EXPECT_FALSE(PeerName::Parse("").ok());
  EXPECT_FALSE(PeerName::Parse(std::string(64, 'a') + ".org").ok());
}

}  // namespace
}  // namespace keyverifier::tls
