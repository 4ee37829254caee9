#include "service/core/crypto.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"

namespace keyverifier::core {
namespace {

// libsodium picks its fastest implementations once; safe to call repeatedly.
// Its documentation forbids using the library when initialisation failed, and
// nothing here could work without it.
void InitSodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) std::abort();
}

struct MdDeleter {
  void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// Fetching the algorithm once avoids OpenSSL 3's per-call provider lookup.
// Should the fetch fail, the legacy built-in descriptor still works.
const EVP_MD* Sha256Md() {
  static const std::unique_ptr<EVP_MD, MdDeleter> md(
      EVP_MD_fetch(nullptr, "SHA256", nullptr));
  return md != nullptr ? md.get() : EVP_sha256();
}

}  // namespace

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKeyFromBase64(absl::string_view text,
                                                            absl::string_view what) {
  absl::StatusOr<std::string> bytes = DecodeBase64(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", bytes.status().message()));
  }
  return Ed25519PublicKeyFromBytes(*bytes, what);
}

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKeyFromBytes(
    absl::string_view bytes, absl::string_view what) {
  if (bytes.size() != kEd25519PublicKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", bytes.size(), " bytes; an ed25519 key is ",
                     kEd25519PublicKeySize));
  }
  Ed25519PublicKey key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

namespace internal {

// Not inlined: the frame it moves is its own.
[[gnu::noinline]] bool CallAtStackOffset(size_t stack_offset, absl::FunctionRef<bool()> f) {
  constexpr uintptr_t kPage = 4096;
  // Moving the stack down by `gap` bytes brings this frame's address to
  // `stack_offset` within a page; f's frame is below it at a fixed distance.
  const uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  const uintptr_t gap = (here - (stack_offset & ~uintptr_t{15})) & (kPage - 1);
  void* moved = __builtin_alloca(gap);
  asm volatile("" : : "r"(moved) : "memory");  // keeps the allocation
  return f();
}

}  // namespace internal

bool Ed25519VerifyAtStackOffset(const Ed25519PublicKey& key, absl::string_view message,
                                absl::string_view signature, size_t stack_offset) {
  InitSodium();
  if (signature.size() != kEd25519SignatureSize) return false;
  return internal::CallAtStackOffset(stack_offset, [&] {
    return crypto_sign_verify_detached(
               reinterpret_cast<const unsigned char*>(signature.data()),
               reinterpret_cast<const unsigned char*>(message.data()),
               message.size(), key.data()) == 0;
  });
}

bool Ed25519Verify(const Ed25519PublicKey& key, absl::string_view message,
                   absl::string_view signature) {
  return Ed25519VerifyAtStackOffset(key, message, signature, kEd25519VerifyStackOffset);
}

Sha256Digest Sha256(absl::string_view data) {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  Sha256Digest out{};
  // SHA-256 can only fail here if OpenSSL cannot allocate. Returning anything
  // would hand out a value that is not the digest (and equal for different
  // inputs), so give up instead.
  if (ctx == nullptr ||
      EVP_DigestInit_ex(ctx.get(), Sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), nullptr) != 1) {
    std::abort();
  }
  return out;
}

absl::StatusOr<Ed25519SigningKey> Ed25519SigningKey::FromSeed(
    absl::string_view seed) {
  InitSodium();
  if (seed.size() != kEd25519SeedSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("ed25519 seed is ", seed.size(), " bytes; expected ",
                     kEd25519SeedSize));
  }
  Ed25519SigningKey key;
  crypto_sign_seed_keypair(key.public_key_.data(), key.secret_key_.data(),
                           reinterpret_cast<const unsigned char*>(seed.data()));
  return key;
}

Ed25519SigningKey::~Ed25519SigningKey() {
  sodium_memzero(secret_key_.data(), secret_key_.size());
}

std::string Ed25519SigningKey::Sign(absl::string_view message) const {
  std::string sig(kEd25519SignatureSize, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), secret_key_.data());
  return sig;
}

}  // namespace keyverifier::core
