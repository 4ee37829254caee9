// The homeserver signing key file format.
#include "service/core/signing_key_file.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"

namespace keyverifier::core {
namespace {

const std::string kSeed(32, '\x2a');

TEST(SigningKeyFileTest, ReadsWhatItWrites) {
  absl::StatusOr<NamedSigningKey> k = ParseSigningKeyFile(SigningKeyFileLine("a_Bc1", kSeed));
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->key_id, "ed25519:a_Bc1");
  EXPECT_EQ(k->key.public_key(), Ed25519SigningKey::FromSeed(kSeed)->public_key());
}

TEST(SigningKeyFileTest, FirstKeyAfterBlankLinesSigns) {
  const std::string text = "\n  \n" + SigningKeyFileLine("first", kSeed) +
                           SigningKeyFileLine("second", std::string(32, '\x01'));
  absl::StatusOr<NamedSigningKey> k = ParseSigningKeyFile(text);
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->key_id, "ed25519:first");
}

TEST(SigningKeyFileTest, BadFilesNameTheLineAndTheProblem) {
  const std::string seed = EncodeBase64Unpadded(kSeed);
  struct Case {
    std::string text;
    std::string expect;
  } cases[] = {
      {"", "has no key"},
      {"ed25519 a\n", "line 1: expected \"ed25519 VERSION SEED\", found 2 fields"},
      {"\nrsa a " + seed, "line 2: algorithm \"rsa\" is not ed25519"},
      {"ed25519 a:b " + seed, "version \"a:b\" is not [a-zA-Z0-9_]+"},
      {"ed25519 a !!!", "the seed is not base64"},
      {"ed25519 a " + EncodeBase64Unpadded(std::string(16, 'x')), "the seed is 16 bytes, expected 32"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<NamedSigningKey> k = ParseSigningKeyFile(c.text);
    ASSERT_FALSE(k.ok()) << c.text;
    EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(k.status().message(), c.expect))
        << k.status().message() << " / " << c.expect;
    EXPECT_FALSE(absl::StrContains(k.status().message(), seed)) << "the seed leaked";
  }
}

}  // namespace
}  // namespace keyverifier::core
