#include "service/keyring/trusted_keys.h"

#include "absl/strings/str_cat.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_keys.h"
#include "service/core/server_name.h"

namespace keyverifier::keyring {
namespace {

absl::Status Bad(absl::string_view where, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("keys file: ", where, ": ", why));
}

absl::StatusOr<core::VerifyKey> ParseTrustedKey(absl::string_view server,
                                                absl::string_view key_id,
                                                const core::Value& entry) {
  std::string where = absl::StrCat(server, " ", key_id);
  if (!core::IsValidEd25519KeyId(key_id)) {
    return Bad(where, "key id is not ed25519:[a-zA-Z0-9_]+");
  }
  if (!entry.is_object()) return Bad(where, "not an object");
  const core::Value* key = entry.Find("key");
  if (key == nullptr || !key->is_string()) {
    return Bad(where, "\"key\" is missing or not a string");
  }
  absl::StatusOr<core::Ed25519PublicKey> pk =
      core::Ed25519PublicKeyFromBase64(key->string_value(), "key");
  if (!pk.ok()) return Bad(where, pk.status().message());
  core::VerifyKey vk;
  vk.key_id = std::string(key_id);
  vk.public_key = *pk;
  for (auto [field, slot] : {std::pair{"valid_until_ts", &vk.valid_until_ts},
                             std::pair{"expired_ts", &vk.expired_ts}}) {
    if (const core::Value* v = entry.Find(field)) {
      if (!v->is_safe_integer()) {
        return Bad(where, absl::StrCat("\"", field, "\" is not an integer"));
      }
      *slot = v->int_value();
    }
  }
  if (!vk.valid_until_ts && !vk.expired_ts) {
    return Bad(where, "needs \"valid_until_ts\" or \"expired_ts\"");
  }
  return vk;
}

}  // namespace

absl::StatusOr<KeysByServer> ParseKeysFile(absl::string_view json) {
  absl::StatusOr<core::Value> root = core::ParseJson(json);
  if (!root.ok()) return Bad("not JSON", root.status().message());
  KeysByServer out;
  if (root->is_array()) {
    for (size_t i = 0; i < root->array().size(); ++i) {
      absl::StatusOr<core::ServerKeys> keys =
          core::ParseServerKeys(root->array()[i]);
      if (!keys.ok()) {
        return Bad(absl::StrCat("entry ", i), keys.status().message());
      }
      std::vector<core::VerifyKey>& dst = out[keys->server_name];
      for (core::VerifyKey& k : keys->AllKeys()) dst.push_back(std::move(k));
    }
    return out;
  }
  if (!root->is_object()) {
    return Bad("top level", "expected an array of key responses or a map");
  }
  for (const auto& [server, keys] : root->members()) {
    if (absl::Status s = core::ServerName::Parse(server).status(); !s.ok()) {
      return Bad(server, absl::StrCat("not a server name: ", s.message()));
    }
    if (!keys.is_object()) return Bad(server, "not an object of keys");
    for (const auto& [key_id, entry] : keys.members()) {
      absl::StatusOr<core::VerifyKey> k = ParseTrustedKey(server, key_id, entry);
      if (!k.ok()) return k.status();
      out[server].push_back(*std::move(k));
    }
  }
  return out;
}

absl::StatusOr<KeyResult> TrustedKeyRing::Lookup(const KeyQuery& query) const {
  auto it = keys_.find(query.server_name.str());
  if (it == keys_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "no trusted keys for ", query.server_name.str(),
        " (keys are only taken from the trusted keys file)"));
  }
  KeyResult result;
  result.server_name = query.server_name.str();
  result.source.kind = KeySource::Kind::kCache;
  for (const core::VerifyKey& k : it->second) {
    (k.expired_ts ? result.old_verify_keys : result.verify_keys).push_back(k);
  }
  return result;
}

std::optional<KeyResult> TrustedKeyRing::TryGetKeysFromMemory(const KeyQuery& query) {
  if (keys_.find(query.server_name.str()) == keys_.end()) return std::nullopt;
  absl::StatusOr<KeyResult> r = Lookup(query);
  if (!r.ok()) return std::nullopt;
  return *std::move(r);
}

}  // namespace keyverifier::keyring
