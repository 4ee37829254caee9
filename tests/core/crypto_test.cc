#include "service/core/crypto.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"

namespace keyverifier::core {
namespace {

using ::testing::HasSubstr;

// Signing key seed of the Matrix spec appendices ("Cryptographic Test
// Vectors"). Its last character has non-zero spare bits.
constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";

Ed25519SigningKey SpecKey() {
  absl::StatusOr<std::string> seed = DecodeBase64(kSpecSeed);
  EXPECT_TRUE(seed.ok()) << seed.status();
  absl::StatusOr<Ed25519SigningKey> key = Ed25519SigningKey::FromSeed(*seed);
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

TEST(Ed25519Test, SpecSeedGivesItsPublicKey) {
  // Derived independently from the same seed with the OpenSSL command line.
  EXPECT_EQ(EncodeBase64Unpadded(AsStringView(SpecKey().public_key())),
            "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI");
}

TEST(Ed25519Test, SpecKeySignsTheEmptyObjectAsTheSpecSays) {
  // Matrix spec appendices, "JSON Signing": the signature of `{}`.
  EXPECT_EQ(EncodeBase64Unpadded(SpecKey().Sign("{}")),
            "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4"
            "ahLwYGYZzuHGZKM5ZAQ");
}

TEST(Ed25519Test, Rfc8032TestVector2) {
  // RFC 8032 section 7.1, TEST 2 (one-byte message 0x72).
  absl::StatusOr<Ed25519SigningKey> key = Ed25519SigningKey::FromSeed(
      absl::HexStringToBytes("4ccd089b28ff96da9db6c346ec114e0f"
                             "5b8a319f35aba624da8cf6ed4fb8a6fb"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(Hex(AsStringView(key->public_key())),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  const std::string signature = key->Sign("\x72");
  EXPECT_EQ(Hex(signature),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
  EXPECT_TRUE(Ed25519Verify(key->public_key(), "\x72", signature));
}

TEST(Ed25519Test, SignVerifyRoundTrip) {
  const Ed25519SigningKey key = SpecKey();
  const std::string message = "{\"one\":1,\"two\":\"Two\"}";
  const std::string signature = key.Sign(message);
  ASSERT_EQ(signature.size(), kEd25519SignatureSize);
  EXPECT_TRUE(Ed25519Verify(key.public_key(), message, signature));
  // Deterministic: the same message gives the same signature.
  EXPECT_EQ(key.Sign(message), signature);
  // Messages with NULs are signed as bytes, not as C strings.
  const std::string with_nul("a\0b", 3);
  EXPECT_TRUE(Ed25519Verify(key.public_key(), with_nul, key.Sign(with_nul)));
  EXPECT_FALSE(Ed25519Verify(key.public_key(), "a", key.Sign(with_nul)));
}

TEST(Ed25519Test, RejectsWrongKeyMessageOrSignature) {
  const Ed25519SigningKey key = SpecKey();
  absl::StatusOr<Ed25519SigningKey> other =
      Ed25519SigningKey::FromSeed(std::string(kEd25519SeedSize, '\x01'));
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string message = "message";
  const std::string signature = key.Sign(message);

  EXPECT_FALSE(Ed25519Verify(other->public_key(), message, signature));
  EXPECT_FALSE(Ed25519Verify(key.public_key(), "messagE", signature));
  EXPECT_FALSE(Ed25519Verify(key.public_key(), "", signature));

  std::string flipped = signature;
  flipped[10] ^= 0x01;
  EXPECT_FALSE(Ed25519Verify(key.public_key(), message, flipped));
  flipped = signature;
  flipped[63] ^= 0x01;  // in S
  EXPECT_FALSE(Ed25519Verify(key.public_key(), message, flipped));

  // Wrong lengths are refused before any arithmetic.
  for (size_t size : {size_t{0}, size_t{63}, size_t{65}, size_t{128}}) {
    std::string sized = signature;
    sized.resize(size, '\0');
    EXPECT_FALSE(Ed25519Verify(key.public_key(), message, sized)) << size;
  }
  EXPECT_FALSE(Ed25519Verify(key.public_key(), message, signature + signature));

  // The all-zero key is a small-order point; nothing verifies under it.
  EXPECT_FALSE(Ed25519Verify(Ed25519PublicKey{}, message,
                             std::string(kEd25519SignatureSize, '\0')));
}

TEST(Ed25519Test, VerifiesTheSameAtEveryStackOffset) {
  const Ed25519SigningKey key = SpecKey();
  const std::string message = "{\"one\":1}";
  const std::string signature = key.Sign(message);
  std::string flipped = signature;
  flipped[5] ^= 0x01;
  for (size_t offset = 0; offset < 4096 + 64; offset += 8) {
    EXPECT_TRUE(Ed25519VerifyAtStackOffset(key.public_key(), message, signature, offset))
        << offset;
    EXPECT_FALSE(Ed25519VerifyAtStackOffset(key.public_key(), message, flipped, offset))
        << offset;
    EXPECT_FALSE(Ed25519VerifyAtStackOffset(key.public_key(), message, "short", offset))
        << offset;
  }
}

// Where in a page the function run by CallAtStackOffset has its frame.
size_t FrameOffsetSeenAt(size_t stack_offset) {
  size_t seen = 0;
  EXPECT_TRUE(internal::CallAtStackOffset(stack_offset, [&] {
    seen = reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) % 4096;
    return true;
  }));
  return seen;
}

// Calls FrameOffsetSeenAt from `depth` frames further down the stack, each
// of them a different size.
[[gnu::noinline]] size_t FrameOffsetFromDepth(int depth, size_t stack_offset) {
  if (depth == 0) return FrameOffsetSeenAt(stack_offset);
  volatile char filler[24 + 16 * 7];
  filler[depth % sizeof(filler)] = 1;
  const size_t seen = FrameOffsetFromDepth(depth - 1, stack_offset);
  return seen + (filler[depth % sizeof(filler)] - 1);
}

TEST(Ed25519Test, CallAtStackOffsetIgnoresTheCallersDepth) {
  for (size_t offset : {size_t{0}, size_t{1024}, size_t{3000}}) {
    const size_t expected = FrameOffsetFromDepth(0, offset);
    for (int depth = 1; depth < 40; ++depth) {
      EXPECT_EQ(FrameOffsetFromDepth(depth, offset), expected) << offset << " " << depth;
    }
  }
  // Offsets move the frame by the same amount (16-byte steps).
  const size_t base = FrameOffsetFromDepth(3, 1024);
  EXPECT_EQ((FrameOffsetFromDepth(3, 1024 + 160) + 4096 - base) % 4096, 160u);
  EXPECT_EQ(FrameOffsetFromDepth(3, 1024 + 7), base);  // rounded down to 16
}

TEST(Ed25519Test, FromSeedRejectsWrongSizes) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{31}, size_t{33}, size_t{64}}) {
    absl::StatusOr<Ed25519SigningKey> key =
        Ed25519SigningKey::FromSeed(std::string(size, 'x'));
    ASSERT_FALSE(key.ok()) << size;
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(key.status().message(),
                HasSubstr(absl::StrCat("is ", size, " bytes; expected 32")));
  }
}

TEST(Ed25519Test, CopiesOutliveTheOriginal) {
  // The destructor wipes the secret key; a copy must keep its own.
  std::string signature;
  Ed25519PublicKey public_key{};
  {
    const Ed25519SigningKey original = SpecKey();
    Ed25519SigningKey copy = original;
    {
      const Ed25519SigningKey doomed = original;
    }
    public_key = copy.public_key();
    signature = copy.Sign("x");
  }
  EXPECT_TRUE(Ed25519Verify(public_key, "x", signature));
  EXPECT_EQ(signature, SpecKey().Sign("x"));
}

TEST(Ed25519Test, PublicKeyFromBytesChecksTheSize) {
  const std::string bytes(AsStringView(SpecKey().public_key()));
  absl::StatusOr<Ed25519PublicKey> key =
      Ed25519PublicKeyFromBytes(bytes, "key ed25519:1");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, SpecKey().public_key());

  for (size_t size : {size_t{0}, size_t{31}, size_t{33}}) {
    absl::StatusOr<Ed25519PublicKey> bad =
        Ed25519PublicKeyFromBytes(std::string(size, 'k'), "key ed25519:abc");
    ASSERT_FALSE(bad.ok()) << size;
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(bad.status().message(),
              absl::StrCat("key ed25519:abc is ", size,
                           " bytes; an ed25519 key is 32"));
  }
}

TEST(Sha256Test, KnownAnswers) {
  struct Case {
    std::string input;
    const char* digest;
  };
  // FIPS 180-2 examples, and the empty string.
  const Case cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Hex(AsStringView(Sha256(c.input))), c.digest)
        << c.input.substr(0, 20);
  }
  // The per-thread context is reused; an earlier input must not leak in.
  EXPECT_EQ(Hex(AsStringView(Sha256(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace keyverifier::core
