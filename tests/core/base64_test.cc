#include "service/core/base64.h"

#include "gtest/gtest.h"

namespace keyverifier::core {
namespace {

struct Case {
  const char* plain;
  const char* encoded;
};

TEST(Base64Test, SpecExamplesRoundTrip) {
  const Case cases[] = {{"", ""},          {"f", "Zg"},         {"fo", "Zm8"},
                        {"foo", "Zm9v"},   {"foob", "Zm9vYg"},  {"fooba", "Zm9vYmE"},
                        {"foobar", "Zm9vYmFy"}};
  for (const Case& c : cases) {
    EXPECT_EQ(EncodeBase64Unpadded(c.plain), c.encoded);
    auto decoded = DecodeBase64(c.encoded);
    ASSERT_TRUE(decoded.ok()) << c.encoded << ": " << decoded.status();
    EXPECT_EQ(*decoded, c.plain);
  }
}

TEST(Base64Test, AcceptsPadding) {
  EXPECT_EQ(*DecodeBase64("Zg=="), "f");
  EXPECT_EQ(*DecodeBase64("Zm8="), "fo");
  EXPECT_FALSE(DecodeBase64("Zg=").ok());   // padded but not a multiple of 4
  EXPECT_FALSE(DecodeBase64("Zm9v=").ok());
}

TEST(Base64Test, AcceptsNonZeroSpareBitsLikeTheSpecSeed) {
  auto seed = DecodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1");
  ASSERT_TRUE(seed.ok()) << seed.status();
  EXPECT_EQ(seed->size(), 32u);
  // Same bytes as the canonical spelling with the spare bits cleared.
  EXPECT_EQ(*seed, *DecodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0"));
  EXPECT_EQ(*DecodeBase64("Zh"), "f");
  EXPECT_EQ(*DecodeBase64("Zm9"), "fo");
}

TEST(Base64Test, UrlSafeAlphabet) {
  const std::string bytes("\xfb\xff\xfe", 3);
  EXPECT_EQ(EncodeBase64Unpadded(bytes), "+//+");
  EXPECT_EQ(EncodeBase64Unpadded(bytes, Base64Alphabet::kUrlSafe), "-__-");
  EXPECT_EQ(*DecodeBase64("-__-", Base64Alphabet::kUrlSafe), bytes);
  EXPECT_FALSE(DecodeBase64("-__-").ok());
  EXPECT_FALSE(DecodeBase64("+//+", Base64Alphabet::kUrlSafe).ok());
}

TEST(Base64Test, RejectsGarbageWithPosition) {
  auto r = DecodeBase64("Zm9v!");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeBase64("Z").ok());
  EXPECT_FALSE(DecodeBase64("Zm 9v").ok());
  EXPECT_FALSE(DecodeBase64("Zm9v\n").ok());
}

}  // namespace
}  // namespace keyverifier::core
