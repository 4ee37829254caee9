// Unpadded Base64 as the Matrix spec uses it (appendices: "Unpadded Base64"),
// standard and URL-safe alphabets, on OpenSSL's table-driven codec: several
// times faster than libsodium's constant-time one, and nothing encoded or
// decoded here is secret (signatures, public keys, hashes). Decoding checks
// the alphabet strictly first.
//
// Decoding accepts input with or without "=" padding, as the spec asks. It also
// accepts a last character whose unused low bits are not zero (the spec's own
// signing-key seed is written that way, and Synapse and ruma accept it).
//
// Pure and thread-safe. Errors: InvalidArgumentError naming the offending input
// length or character.
#ifndef KEYVERIFIER_SERVICE_CORE_BASE64_H_
#define KEYVERIFIER_SERVICE_CORE_BASE64_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::core {

enum class Base64Alphabet { kStandard, kUrlSafe };

std::string EncodeBase64Unpadded(
    absl::string_view bytes, Base64Alphabet alphabet = Base64Alphabet::kStandard);

absl::StatusOr<std::string> DecodeBase64(
    absl::string_view text, Base64Alphabet alphabet = Base64Alphabet::kStandard);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_BASE64_H_
