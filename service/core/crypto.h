// The two primitives Matrix signing needs: ed25519 (libsodium) and SHA-256
// (OpenSSL), plus an ed25519 signing key for tests, tools and fixtures.
//
// Thread-safe. Key material is owned by value types; the secret key is wiped on
// destruction. Errors: InvalidArgumentError naming the size received/expected.
#ifndef KEYVERIFIER_SERVICE_CORE_CRYPTO_H_
#define KEYVERIFIER_SERVICE_CORE_CRYPTO_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::core {

inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;
inline constexpr size_t kEd25519SeedSize = 32;
inline constexpr size_t kSha256Size = 32;

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeySize>;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// Checks sizes; `what` names the value in the error ("key ed25519:abc").
// From its unpadded (or padded) base64 text, as key responses carry it.
// Errors say what was wrong with the base64 or the length, naming `what`.
absl::StatusOr<Ed25519PublicKey> Ed25519PublicKeyFromBase64(absl::string_view text,
                                                            absl::string_view what);

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKeyFromBytes(
    absl::string_view bytes, absl::string_view what);

// True iff `signature` (64 bytes) is a valid ed25519 signature of `message`.
//
// libsodium is always entered with the stack at the same offset within a
// 4 KiB page (set by kEd25519VerifyStackOffset). Its verify reads
// precomputed tables at fixed page offsets while it writes points on the
// stack; when the two land 4 KiB apart the CPU mistakes the loads for
// reloads of the stores (4K aliasing) and every verify is about a sixth
// slower. Which stack offsets do that depends only on the library build, but
// where a thread's stack happens to be at the call depends on the whole call
// chain, so without this an unrelated change elsewhere could make every
// verify slower. //tests/bench:verify_stack_benchmark measures every offset.
bool Ed25519Verify(const Ed25519PublicKey& key, absl::string_view message,
                   absl::string_view signature);

// Where Ed25519Verify puts the stack, as the `stack_offset` of
// CallAtStackOffset below: about 2,000 bytes from the slow offsets of
// Debian 12's libsodium, so a few frames more or less do not matter.
inline constexpr size_t kEd25519VerifyStackOffset = 1024;

// Ed25519Verify with the stack at `stack_offset` modulo 4096 (rounded down
// to 16 bytes) when libsodium is entered; for the benchmark that measures
// every offset.
bool Ed25519VerifyAtStackOffset(const Ed25519PublicKey& key, absl::string_view message,
                                absl::string_view signature, size_t stack_offset);

namespace internal {
// Calls `f` with the stack moved down so that, however deep the caller is,
// f runs at the same offset within a page: `stack_offset` (rounded down to
// 16 bytes) less a constant of the build.
bool CallAtStackOffset(size_t stack_offset, absl::FunctionRef<bool()> f);
}  // namespace internal

Sha256Digest Sha256(absl::string_view data);

template <size_t N>
absl::string_view AsStringView(const std::array<uint8_t, N>& bytes) {
  return absl::string_view(reinterpret_cast<const char*>(bytes.data()), N);
}

class Ed25519SigningKey {
 public:
  // From a 32-byte seed.
  static absl::StatusOr<Ed25519SigningKey> FromSeed(absl::string_view seed);
  ~Ed25519SigningKey();
  Ed25519SigningKey(const Ed25519SigningKey&) = default;
  Ed25519SigningKey& operator=(const Ed25519SigningKey&) = default;

  const Ed25519PublicKey& public_key() const { return public_key_; }
  std::string Sign(absl::string_view message) const;  // 64 bytes

 private:
  Ed25519SigningKey() = default;
  Ed25519PublicKey public_key_{};
  std::array<uint8_t, 64> secret_key_{};
};

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_CRYPTO_H_
