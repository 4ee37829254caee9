#include "service/core/server_keys.h"

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_name.h"
#include "service/core/signed_json.h"

namespace keyverifier::core {
namespace {

absl::Status Bad(absl::string_view server, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "key response", server.empty() ? "" : absl::StrCat(" for ", server), ": ",
      why));
}

// The expected server name, for messages before the response names one. A
// view of the optional's own string, never of a temporary.
absl::string_view ExpectedName(const ServerKeyExpectations& expect) {
  return expect.server_name ? absl::string_view(*expect.server_name)
                            : absl::string_view();
}

absl::StatusOr<int64_t> RequireInteger(const Value& obj, absl::string_view field,
                                       absl::string_view server,
                                       absl::string_view where) {
  const Value* v = obj.Find(field);
  if (v == nullptr) {
    return Bad(server, absl::StrCat(where, field, " is missing"));
  }
  if (!v->is_safe_integer()) {
    return Bad(server, absl::StrCat(where, field, " is not an integer"));
  }
  return v->int_value();
}

// Parses {"ed25519:x": {"key": "...", ...}, ...}; keys of other algorithms are
// skipped. `old` selects old_verify_keys (expired_ts required).
absl::Status ParseKeyMap(const Value* map, absl::string_view field, bool old,
                         absl::string_view server, int64_t valid_until_ts,
                         std::vector<VerifyKey>* out) {
  if (map == nullptr) return absl::OkStatus();
  if (!map->is_object()) return Bad(server, absl::StrCat(field, " is not an object"));
  for (const auto& [key_id, entry] : map->members()) {
    if (KeyAlgorithm(key_id) != "ed25519") continue;
    if (!IsValidEd25519KeyId(key_id)) {
      return Bad(server, absl::StrCat(field, ": key id \"", key_id,
                                      "\" is not ed25519:[a-zA-Z0-9_]+"));
    }
    if (!entry.is_object()) {
      return Bad(server, absl::StrCat(field, ".", key_id, " is not an object"));
    }
    const Value* key = entry.Find("key");
    if (key == nullptr || !key->is_string()) {
      return Bad(server,
                 absl::StrCat(field, ".", key_id, ".key is missing or not a string"));
    }
    absl::StatusOr<Ed25519PublicKey> pk = Ed25519PublicKeyFromBase64(
        key->string_value(), absl::StrCat(field, ".", key_id, ".key"));
    if (!pk.ok()) return Bad(server, pk.status().message());
    VerifyKey vk;
    vk.key_id = key_id;
    vk.public_key = *pk;
    if (old) {
      absl::StatusOr<int64_t> expired = RequireInteger(
          entry, "expired_ts", server, absl::StrCat(field, ".", key_id, "."));
      if (!expired.ok()) return expired.status();
      vk.expired_ts = *expired;
    } else {
      vk.valid_until_ts = valid_until_ts;
    }
    out->push_back(std::move(vk));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerKeys> ParseValue(const Value& v, std::string raw,
                                      const ServerKeyExpectations& expect) {
  const absl::string_view expected = ExpectedName(expect);
  if (!v.is_object()) return Bad(expected, "not a JSON object");
  const Value* name = v.Find("server_name");
  if (name == nullptr || !name->is_string()) {
    return Bad(expected, "server_name is missing or not a string");
  }
  ServerKeys keys;
  keys.server_name = name->string_value();
  if (absl::Status s = ServerName::Parse(keys.server_name).status(); !s.ok()) {
    return Bad(expected, s.message());
  }
  if (expect.server_name && keys.server_name != *expect.server_name) {
    return Bad(expected, absl::StrCat("server_name is \"", keys.server_name,
                                      "\", expected \"", *expect.server_name,
                                      "\""));
  }
  const std::string& server = keys.server_name;
  absl::StatusOr<int64_t> until = RequireInteger(v, "valid_until_ts", server, "");
  if (!until.ok()) return until.status();
  keys.valid_until_ts = *until;

  const Value* verify_keys = v.Find("verify_keys");
  if (verify_keys == nullptr) return Bad(server, "verify_keys is missing");
  // Counted before any key is parsed: a padded response costs no more.
  const Value* old_keys = v.Find("old_verify_keys");
  const size_t listed = (verify_keys->is_object() ? verify_keys->members().size() : 0) +
                        (old_keys != nullptr && old_keys->is_object() ? old_keys->members().size() : 0);
  if (listed > expect.max_keys) {
    return Bad(server, absl::StrCat("lists ", listed, " keys (current and old); the limit is ",
                                    expect.max_keys));
  }
  if (absl::Status s = ParseKeyMap(verify_keys, "verify_keys", false, server,
                                   keys.valid_until_ts, &keys.verify_keys);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseKeyMap(v.Find("old_verify_keys"), "old_verify_keys",
                                   true, server, 0, &keys.old_verify_keys);
      !s.ok()) {
    return s;
  }

  // One key id, one key: listed as current and as old it must be the same.
  for (const VerifyKey& old : keys.old_verify_keys) {
    for (const VerifyKey& current : keys.verify_keys) {
      if (current.key_id == old.key_id && current.public_key != old.public_key) {
        return Bad(server, absl::StrCat("key id ", old.key_id,
                                        " is given two different keys (in verify_keys and "
                                        "old_verify_keys)"));
      }
    }
  }
  absl::StatusOr<std::string> signed_bytes = SigningBytes(v);
  if (!signed_bytes.ok()) return Bad(server, signed_bytes.status().message());
  const Value* signatures = v.Find("signatures");
  // Every current key must have signed the response itself. Without one, no
  // signature would tie the response (and its old keys) to the server.
  if (keys.verify_keys.empty()) {
    return Bad(server, "verify_keys has no ed25519 key to check the response with");
  }
  for (const VerifyKey& key : keys.verify_keys) {
    const Value* mine = signatures ? signatures->Find(server) : nullptr;
    if (mine == nullptr || mine->Find(key.key_id) == nullptr) {
      return Bad(server, absl::StrCat("verify key ", key.key_id,
                                      " did not sign the response"));
    }
    SignatureCheck c = CheckServerSignatures(
        signatures, server, *signed_bytes, absl::MakeConstSpan(&key, 1));
    if (!c.ok()) return Bad(server, c.message);
  }
  if (expect.notary != nullptr) {
    const PinnedNotary& notary = *expect.notary;
    SignatureCheck c = CheckServerSignatures(signatures, notary.server_name.str(),
                                             *signed_bytes, notary.keys);
    if (!c.ok()) {
      return Bad(server, absl::StrCat("notary ", notary.server_name.str(), ": ",
                                      ReasonName(c.reason), ": ", c.message));
    }
    keys.notaries.push_back(notary.server_name.str());
  }
  if (raw.empty()) {
    // What the signatures cover was encodable; `unsigned` need not be.
    absl::StatusOr<std::string> encoded = CanonicalJson(v, NumberPolicy::kLegacy);
    if (!encoded.ok()) return Bad(server, encoded.status().message());
    raw = *std::move(encoded);
  }
  keys.raw_json = std::move(raw);
  return keys;
}

}  // namespace

std::vector<VerifyKey> ServerKeys::AllKeys() const {
  std::vector<VerifyKey> all = verify_keys;
  all.insert(all.end(), old_verify_keys.begin(), old_verify_keys.end());
  return all;
}

absl::StatusOr<ServerKeys> ParseServerKeys(absl::string_view json,
                                           const ServerKeyExpectations& expect) {
  absl::StatusOr<Value> v = ParseJson(json);
  if (!v.ok()) {
    return Bad(ExpectedName(expect), v.status().message());
  }
  return ParseValue(*v, std::string(json), expect);
}

absl::StatusOr<ServerKeys> ParseServerKeys(const Value& response,
                                           const ServerKeyExpectations& expect) {
  return ParseValue(response, "", expect);
}

absl::StatusOr<std::vector<Value>> NotaryEntries(absl::string_view json,
                                                 const PinnedNotary& notary) {
  absl::StatusOr<Value> v = ParseJson(json);
  if (!v.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "notary ", notary.server_name.str(), " answer: ", v.status().message()));
  }
  Value* list = v->is_object() ? v->FindMutable("server_keys") : nullptr;
  if (list == nullptr || !list->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "notary ", notary.server_name.str(),
        " answer: server_keys is missing or not an array"));
  }
  return std::move(list->mutable_array());
}

absl::StatusOr<ServerKeys> CheckNotaryEntry(const Value& entry, const PinnedNotary& notary,
                                            size_t max_keys) {
  ServerKeyExpectations expect;
  expect.notary = &notary;
  expect.max_keys = max_keys;
  return ParseValue(entry, "", expect);
}

absl::StatusOr<std::vector<absl::StatusOr<ServerKeys>>> ParseNotaryResponse(
    absl::string_view json, const PinnedNotary& notary) {
  absl::StatusOr<std::vector<Value>> entries = NotaryEntries(json, notary);
  if (!entries.ok()) return entries.status();
  std::vector<absl::StatusOr<ServerKeys>> out;
  out.reserve(entries->size());
  for (const Value& entry : *entries) out.push_back(CheckNotaryEntry(entry, notary));
  return out;
}

std::vector<std::string> TlsFingerprints(absl::string_view response_json) {
  std::vector<std::string> out;
  absl::StatusOr<Value> v = ParseJson(response_json);
  if (!v.ok() || !v->is_object()) return out;
  const Value* list = v->Find("tls_fingerprints");
  if (list == nullptr || !list->is_array()) return out;
  for (const Value& entry : list->array()) {
    const Value* sha = entry.is_object() ? entry.Find("sha256") : nullptr;
    if (sha == nullptr || !sha->is_string()) continue;
    absl::StatusOr<std::string> raw = DecodeBase64(sha->string_value());
    if (raw.ok() && raw->size() == 32) out.push_back(*std::move(raw));
  }
  return out;
}

}  // namespace keyverifier::core
