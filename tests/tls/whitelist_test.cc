#include "service/tls/whitelist.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyverifier::tls {
namespace {

using ::testing::HasSubstr;

std::string Rule(const Whitelist& w, const std::string& name) {
  std::optional<Whitelist::Match> m = w.Find(*PeerName::Parse(name));
  return m ? m->rule : "-";
}

TEST(WhitelistTest, GlobsMatchWholeLabels) {
  Whitelist w = *Whitelist::Create({"*.onion", "exact.example", "*.Internal.Example"});
  EXPECT_EQ(Rule(w, "abc.onion"), "*.onion");
  EXPECT_EQ(Rule(w, "a.b.onion"), "*.onion");
  EXPECT_EQ(Rule(w, "onion"), "-");
  EXPECT_EQ(Rule(w, "xonion"), "-");
  EXPECT_EQ(Rule(w, "exact.example"), "exact.example");
  EXPECT_EQ(Rule(w, "sub.exact.example"), "-");
  EXPECT_EQ(Rule(w, "host.internal.example"), "*.Internal.Example");
}

TEST(WhitelistTest, CidrsMatchAddressesOnly) {
  Whitelist w =
      *Whitelist::Create({"10.0.0.0/8", "fc00::/7", "192.0.2.1", "172.16.0.0/12"});
  EXPECT_EQ(Rule(w, "10.255.0.1"), "10.0.0.0/8");
  EXPECT_EQ(Rule(w, "11.0.0.1"), "-");
  EXPECT_EQ(Rule(w, "fdff::1"), "fc00::/7");
  EXPECT_EQ(Rule(w, "fe00::1"), "-");
  EXPECT_EQ(Rule(w, "192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(Rule(w, "192.0.2.2"), "-");
  EXPECT_EQ(Rule(w, "172.31.255.255"), "172.16.0.0/12");
  EXPECT_EQ(Rule(w, "172.32.0.0"), "-");
  EXPECT_EQ(Rule(w, "::ffff:10.0.0.1"), "-");  // families do not mix
}

TEST(WhitelistTest, ZeroPrefixMatchesTheWholeFamily) {
  Whitelist w = *Whitelist::Create({"0.0.0.0/0"});
  EXPECT_EQ(Rule(w, "203.0.113.9"), "0.0.0.0/0");
  EXPECT_EQ(Rule(w, "2001:db8::1"), "-");
}

TEST(WhitelistTest, PreciseErrors) {
  auto err = [](const std::string& rule) {
    return std::string(Whitelist::Create({rule}).status().message());
  };
  EXPECT_THAT(err("foo*.example"), HasSubstr("whole left-most label"));
  EXPECT_THAT(err("*.*.example"), HasSubstr("whole left-most label"));
  EXPECT_THAT(err("a..example"), HasSubstr("label"));
  EXPECT_THAT(err("10.0.0.0/33"), HasSubstr("0 to 32"));
  EXPECT_THAT(err("fc00::/129"), HasSubstr("0 to 128"));
  EXPECT_THAT(err("10.0.0.0/"), HasSubstr("prefix length"));
  EXPECT_THAT(err("10.0.0.1/8"), HasSubstr("bits set past /8"));
  EXPECT_THAT(err("300.0.0.0/8"), HasSubstr("not an IP address"));
  EXPECT_THAT(err(""), HasSubstr("empty"));
}

}  // namespace
}  // namespace keyverifier::tls
