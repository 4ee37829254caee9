#include "service/net/well_known.h"

#include "gtest/gtest.h"

namespace keyverifier::net {
namespace {

TEST(WellKnownBodyTest, ReturnsTheDelegatedName) {
  EXPECT_EQ(ParseWellKnownBody(R"({"m.server": "matrix.example.org:443"})")->str(),
            "matrix.example.org:443");
  EXPECT_EQ(ParseWellKnownBody(R"({"m.server":"[2001:db8::1]","other":1})")->str(),
            "[2001:db8::1]");
}

TEST(WellKnownBodyTest, InvalidBodiesSayWhy) {
  struct Case {
    const char* body;
    const char* says;
  } cases[] = {
      {"<html>", "not JSON"},
      {"[]", "not a JSON object"},
      {"{}", "no m.server"},
      {R"({"m.server": 5})", "no m.server"},
      {R"({"m.server": "bad name!"})", "m.server"},
      {R"({"m.server": "host:99999x"})", "m.server"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<core::ServerName> r = ParseWellKnownBody(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.body << ": " << r.status();
  }
  EXPECT_FALSE(ParseWellKnownBody(std::string(kMaxWellKnownBytes + 1, ' ')).ok());
}

TEST(WellKnownCacheTest, FollowsCacheControlWithinBounds) {
  CachePolicy p;
  EXPECT_EQ(WellKnownCacheTime("", p), absl::Hours(24));
  EXPECT_EQ(WellKnownCacheTime("public, max-age=3600", p), absl::Hours(1));
  EXPECT_EQ(WellKnownCacheTime("MAX-AGE=\"60\"", p), absl::Minutes(1));
  EXPECT_EQ(WellKnownCacheTime("max-age=999999999", p), absl::Hours(48));
  EXPECT_EQ(WellKnownCacheTime("max-age=0", p), absl::ZeroDuration());
  EXPECT_EQ(WellKnownCacheTime("no-store", p), absl::ZeroDuration());
  EXPECT_EQ(WellKnownCacheTime("max-age=600, no-cache", p), absl::ZeroDuration());
  EXPECT_EQ(WellKnownCacheTime("max-age=banana", p), absl::Hours(24));
}

}  // namespace
}  // namespace keyverifier::net
