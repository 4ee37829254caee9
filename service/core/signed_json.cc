#include "service/core/signed_json.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/json_value.h"

namespace keyverifier::core {

absl::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kOk: return "ok";
    case Reason::kContentHashMismatch: return "content_hash_mismatch";
    case Reason::kMissingSignature: return "missing_signature";
    case Reason::kUnknownKey: return "unknown_key";
    case Reason::kKeyNotValid: return "key_not_valid";
    case Reason::kBadSignature: return "bad_signature";
    case Reason::kMalformedSignature: return "malformed_signature";
    case Reason::kDestinationMismatch: return "destination_mismatch";
  }
  return "unknown";
}

namespace {

const VerifyKey* FindKey(absl::Span<const VerifyKey> keys,
                         absl::string_view key_id) {
  for (const VerifyKey& k : keys) {
    if (k.key_id == key_id) return &k;
  }
  return nullptr;
}

SignatureCheck Fail(Reason reason, std::string message) {
  SignatureCheck c;
  c.reason = reason;
  c.message = std::move(message);
  return c;
}

}  // namespace

SignatureCheck CheckServerSignatures(const Value* signatures,
                                     absl::string_view server,
                                     absl::string_view signed_bytes,
                                     absl::Span<const VerifyKey> keys,
                                     const KeyFilter& usable) {
  const Value* mine =
      signatures && signatures->is_object() ? signatures->Find(server) : nullptr;
  if (mine == nullptr || !mine->is_object() || mine->members().empty()) {
    return Fail(Reason::kMissingSignature,
                absl::StrCat("no signature from ", server));
  }
  SignatureCheck result;
  std::vector<std::string> unknown;
  std::vector<std::string> unusable;
  for (const auto& [key_id, sig] : mine->members()) {
    if (KeyAlgorithm(key_id) != "ed25519") continue;  // not understood: ignore
    const VerifyKey* key = FindKey(keys, key_id);
    if (key == nullptr) {
      unknown.push_back(key_id);
      continue;
    }
    if (usable) {
      if (std::optional<std::string> why = usable(*key)) {
        unusable.push_back(std::move(*why));
        continue;
      }
    }
    if (!sig.is_string()) {
      return Fail(Reason::kMalformedSignature,
                  absl::StrCat("signature of ", server, " with ", key_id,
                               " is not a string"));
    }
    absl::StatusOr<std::string> bytes = DecodeBase64(sig.string_value());
    if (!bytes.ok()) {
      return Fail(Reason::kMalformedSignature,
                  absl::StrCat("signature of ", server, " with ", key_id, ": ",
                               bytes.status().message()));
    }
    if (bytes->size() != kEd25519SignatureSize) {
      return Fail(Reason::kMalformedSignature,
                  absl::StrCat("signature of ", server, " with ", key_id, " is ",
                               bytes->size(), " bytes, not ",
                               kEd25519SignatureSize));
    }
    if (!Ed25519Verify(key->public_key, signed_bytes, *bytes)) {
      return Fail(Reason::kBadSignature,
                  absl::StrCat("signature of ", server, " with ", key_id,
                               " does not verify"));
    }
    result.key_ids_verified.push_back(key_id);
  }
  if (!result.key_ids_verified.empty()) return result;
  if (!unusable.empty()) {
    return Fail(Reason::kKeyNotValid,
                absl::StrCat(server, ": ", absl::StrJoin(unusable, "; ")));
  }
  if (!unknown.empty()) {
    return Fail(Reason::kUnknownKey,
                absl::StrCat(server, " signed with unknown key(s) ",
                             absl::StrJoin(unknown, ", ")));
  }
  return Fail(Reason::kMissingSignature,
              absl::StrCat("no ed25519 signature from ", server));
}

absl::StatusOr<std::string> SigningBytes(const Value& object,
                                         NumberPolicy policy) {
  std::string out;
  absl::Status s =
      AppendCanonicalJsonWithout(object, {"signatures", "unsigned"}, policy, &out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<SignatureCheck> VerifySignedJson(const Value& object,
                                                absl::string_view server,
                                                absl::Span<const VerifyKey> keys,
                                                NumberPolicy policy) {
  absl::StatusOr<std::string> bytes = SigningBytes(object, policy);
  if (!bytes.ok()) return bytes.status();
  return CheckServerSignatures(object.Find("signatures"), server, *bytes, keys);
}

absl::Status SignJson(Value* object, absl::string_view server,
                      absl::string_view key_id, const Ed25519SigningKey& key,
                      NumberPolicy policy) {
  absl::StatusOr<std::string> bytes = SigningBytes(*object, policy);
  if (!bytes.ok()) return bytes.status();
  std::string sig = EncodeBase64Unpadded(key.Sign(*bytes));
  Value* signatures = object->FindMutable("signatures");
  if (signatures == nullptr || !signatures->is_object()) {
    object->Set("signatures", Value::Object());
    signatures = object->FindMutable("signatures");
  }
  Value* mine = signatures->FindMutable(server);
  if (mine == nullptr || !mine->is_object()) {
    signatures->Set(std::string(server), Value::Object());
    mine = signatures->FindMutable(server);
  }
  mine->Set(std::string(key_id), Value::String(std::move(sig)));
  return absl::OkStatus();
}

}  // namespace keyverifier::core
