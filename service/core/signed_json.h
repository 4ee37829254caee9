// Checking a server's signatures on a JSON object (appendices: "Checking for a
// Signature"): take `signatures[server]`, ignore algorithms other than ed25519
// and keys that are unknown or not usable, decode each remaining signature and
// verify it over the canonical JSON of the object without `signatures` and
// `unsigned`. Every usable signature must verify and there must be at least one.
//
// A signature that does not verify is a verdict (SignatureCheck), not an error.
// Pure and thread-safe.
#ifndef KEYVERIFIER_SERVICE_CORE_SIGNED_JSON_H_
#define KEYVERIFIER_SERVICE_CORE_SIGNED_JSON_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/json_value.h"
#include "service/core/verify_key.h"

namespace keyverifier::core {

// Machine-readable reasons shared by every verdict the core gives.
enum class Reason {
  kOk,
  kContentHashMismatch,  // signatures fine, content hash not: use the redacted form
  kMissingSignature,     // no signature at all from a server that must sign
  kUnknownKey,           // signed only with keys the verifier does not have
  kKeyNotValid,          // keys known, but not valid for this event or request
  kBadSignature,         // a signature does not verify
  kMalformedSignature,   // not base64, or not 64 bytes
  kDestinationMismatch,  // X-Matrix: the request was meant for another server
};
// "ok", "content_hash_mismatch", "missing_signature", ...
absl::string_view ReasonName(Reason reason);

struct SignatureCheck {
  Reason reason = Reason::kOk;  // kOk means valid
  std::string message;          // for humans; names the server and key id
  std::vector<std::string> key_ids_verified;
  bool ok() const { return reason == Reason::kOk; }
};

// Returns nullopt if the key may be used, else why not.
using KeyFilter = std::function<std::optional<std::string>(const VerifyKey&)>;

// Checks `server`'s signatures in `signatures` (the object's "signatures"
// member, may be null) over `signed_bytes`. `keys` are the server's known keys;
// `usable` (may be empty) rules some out.
SignatureCheck CheckServerSignatures(const Value* signatures,
                                     absl::string_view server,
                                     absl::string_view signed_bytes,
                                     absl::Span<const VerifyKey> keys,
                                     const KeyFilter& usable = nullptr);

// The bytes a signature covers: canonical JSON without signatures/unsigned.
absl::StatusOr<std::string> SigningBytes(const Value& object,
                                         NumberPolicy policy = NumberPolicy::kSpec);

// Convenience: SigningBytes + CheckServerSignatures with every key usable.
absl::StatusOr<SignatureCheck> VerifySignedJson(
    const Value& object, absl::string_view server,
    absl::Span<const VerifyKey> keys, NumberPolicy policy = NumberPolicy::kSpec);

// Adds `server`'s signature with `key_id` to `object` (the inverse, for tests,
// fixtures and tools). Fails if the object cannot be canonicalised.
absl::Status SignJson(Value* object, absl::string_view server,
                      absl::string_view key_id, const Ed25519SigningKey& key,
                      NumberPolicy policy = NumberPolicy::kSpec);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_SIGNED_JSON_H_
