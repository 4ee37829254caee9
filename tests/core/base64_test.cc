#include "service/core/base64.h"

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyverifier::core {
namespace {

struct Case {
  const char* plain;
  const char* encoded;
};

TEST(Base64Test, SpecExamplesRoundTrip) {
  const Case cases[] = {{"", ""},
                        {"f", "Zg"},
                        {"fo", "Zm8"},
                        {"foo", "Zm9v"},
                        {"foob", "Zm9vYg"},
                        {"fooba", "Zm9vYmE"},
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
  EXPECT_FALSE(DecodeBase64("Zg=").ok());  // padded but not a multiple of 4
  EXPECT_FALSE(DecodeBase64("Zm9v=").ok());
}

TEST(Base64Test, AcceptsNonZeroSpareBitsLikeTheSpecSeed) {
  auto seed = DecodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1");
  ASSERT_TRUE(seed.ok()) << seed.status();
  EXPECT_EQ(seed->size(), 32u);
  // Same bytes as the canonical spelling with the spare bits cleared.
  EXPECT_EQ(*seed,
            *DecodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0"));
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

// Bytes from a fixed linear congruential generator: reproducible everywhere.
std::string PseudoRandomBytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  for (char& c : out) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return out;
}

// A plain bit-by-bit decoder to compare against; ignores spare bits.
std::string ReferenceDecode(const std::string& text, Base64Alphabet alphabet) {
  const std::string abc =
      alphabet == Base64Alphabet::kStandard
          ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(abc.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

TEST(Base64Test, RoundTripsEveryLengthInBothAlphabets) {
  for (size_t n = 0; n <= 100; ++n) {
    const std::string bytes = PseudoRandomBytes(n, static_cast<uint32_t>(n));
    for (Base64Alphabet a :
         {Base64Alphabet::kStandard, Base64Alphabet::kUrlSafe}) {
      const std::string text = EncodeBase64Unpadded(bytes, a);
      EXPECT_EQ(text.size(), (4 * n + 2) / 3) << n;
      EXPECT_EQ(text.find('='), std::string::npos) << text;
      absl::StatusOr<std::string> back = DecodeBase64(text, a);
      ASSERT_TRUE(back.ok()) << text << ": " << back.status();
      EXPECT_EQ(*back, bytes) << text;
      EXPECT_EQ(*back, ReferenceDecode(text, a)) << text;
      // The same with "=" padding restored.
      std::string padded = text + std::string((4 - text.size() % 4) % 4, '=');
      absl::StatusOr<std::string> from_padded = DecodeBase64(padded, a);
      ASSERT_TRUE(from_padded.ok()) << padded << ": " << from_padded.status();
      EXPECT_EQ(*from_padded, bytes) << padded;
    }
  }
}

TEST(Base64Test, EverySpareBitPatternDecodesAlike) {
  const std::string abc =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  // "Zg" is "f": the last character carries 2 data bits and 4 spare ones.
  for (size_t v = 32; v < 48; ++v) {
    std::string text = std::string("Zm9vZ") + abc[v];
    absl::StatusOr<std::string> got = DecodeBase64(text);
    ASSERT_TRUE(got.ok()) << text << ": " << got.status();
    EXPECT_EQ(*got, "foof") << text;
    EXPECT_EQ(*DecodeBase64(text + "=="), "foof") << text;
  }
  // "Zm8" is "fo": 4 data bits and 2 spare ones.
  for (size_t v = 60; v < 64; ++v) {
    std::string text = std::string("Zm") + abc[v];
    absl::StatusOr<std::string> got = DecodeBase64(text);
    ASSERT_TRUE(got.ok()) << text << ": " << got.status();
    EXPECT_EQ(*got, "fo") << text;
    EXPECT_EQ(*DecodeBase64(text + "="), "fo") << text;
  }
  // URL-safe too: "-_" and "-_8" with spare bits set.
  EXPECT_EQ(*DecodeBase64("-_", Base64Alphabet::kUrlSafe), "\xfb");
  EXPECT_EQ(*DecodeBase64("-__", Base64Alphabet::kUrlSafe), "\xfb\xff");
  EXPECT_EQ(*DecodeBase64("-__=", Base64Alphabet::kUrlSafe), "\xfb\xff");
}

TEST(Base64Test, SpecSignatureVectorDecodes) {
  // Matrix spec appendices, "JSON Signing": the signature of {} by "domain".
  const std::string sig =
      "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/"
      "7Xg4ahLwYGYZzuHGZKM5ZAQ";
  absl::StatusOr<std::string> bytes = DecodeBase64(sig);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->size(), 64u);
  EXPECT_EQ(EncodeBase64Unpadded(*bytes), sig);
  EXPECT_EQ(*DecodeBase64(sig + "=="), *bytes);
}

TEST(Base64Test, RejectsMisplacedPaddingAndStrayCharacters) {
  using ::testing::HasSubstr;
  for (const char* bad :
       {"=",        "==",    "===",    "====",     "Zg=",         "Zg===",
        "Zm8==",    "Zm9v=", "Zm9v==", "Zg==Zg==", "Zm9v=Zm9",    "Z===",
        "Zm9vY===", "Z",     "Zm9vY",  " Zm9v",    "Zm9v ",       "Zm\n9v",
        "Zm9v\r\n", "Zm-v",  "Zm_v",   "Zm.v",     "Zm9v\xc3\xa9"}) {
    absl::StatusOr<std::string> r = DecodeBase64(bad);
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\" as " << *r;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_FALSE(DecodeBase64(std::string("Zm9v\0", 5)).ok());
  EXPECT_FALSE(DecodeBase64(std::string("Zm\09v", 5)).ok());
  EXPECT_FALSE(DecodeBase64("Zm+v", Base64Alphabet::kUrlSafe).ok());
  EXPECT_FALSE(DecodeBase64("Zm/v", Base64Alphabet::kUrlSafe).ok());
  // The message names where the bad character is.
  EXPECT_THAT(DecodeBase64("Zm9v!xyz").status().message(),
              HasSubstr(" 4 of 8"));
  EXPECT_THAT(DecodeBase64("Zm9vY").status().message(), HasSubstr("5"));
}

}  // namespace
}  // namespace keyverifier::core
