#include "service/keyring/banned_keys.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "service/core/server_name.h"
#include "service/core/verify_key.h"

namespace keyverifier::keyring {

absl::StatusOr<BannedKeys> BannedKeys::Create(const std::vector<Entry>& entries) {
  BannedKeys out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const std::string where = absl::StrCat("entry ", i, ": ");
    if (!e.public_key.empty()) {
      if (!e.server_name.empty() || !e.key_id.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "give either public_key, or server_name and key_id, not both"));
      }
      absl::StatusOr<core::Ed25519PublicKey> key =
          core::Ed25519PublicKeyFromBase64(e.public_key, "public_key");
      if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat(where, key.status().message()));
      out.by_key_.insert(*key);
      continue;
    }
    if (absl::Status s = core::ServerName::Parse(e.server_name).status(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "server_name: ", s.message()));
    }
    if (!core::IsValidEd25519KeyId(e.key_id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "key_id \"", e.key_id, "\" is not an ed25519 key id"));
    }
    out.by_id_.emplace(absl::AsciiStrToLower(e.server_name), e.key_id);
  }
  return out;
}

bool BannedKeys::Banned(absl::string_view server, const core::VerifyKey& key) const {
  if (by_key_.count(key.public_key) > 0) return true;
  return !by_id_.empty() &&
         by_id_.count(std::make_pair(absl::AsciiStrToLower(server), key.key_id)) > 0;
}

void BannedKeys::Mark(KeyResult& result) const {
  if (empty()) return;
  for (auto* list : {&result.verify_keys, &result.old_verify_keys}) {
    for (core::VerifyKey& k : *list) k.banned = Banned(result.server_name, k);
  }
}

void BanningKeyRing::GetKeys(const KeyQuery& query, absl::Time deadline,
                             async::Callback<KeyResult> done) {
  inner_.GetKeys(query, deadline,
                 [this, done = std::move(done)](absl::StatusOr<KeyResult> r) mutable {
                   if (r.ok()) banned_.Mark(*r);
                   done(std::move(r));
                 });
}

void BanningKeyRing::GetKeysEach(std::vector<KeyQuery> queries, absl::Time deadline,
                                 std::shared_ptr<const EachDone> each) {
  inner_.GetKeysEach(std::move(queries), deadline,
                     std::make_shared<const EachDone>(
                         [this, each](size_t i, absl::StatusOr<KeyResult> r) {
                           if (r.ok()) banned_.Mark(*r);
                           (*each)(i, std::move(r));
                         }));
}

std::optional<KeyResult> BanningKeyRing::TryGetKeysFromMemory(const KeyQuery& query) {
  std::optional<KeyResult> r = inner_.TryGetKeysFromMemory(query);
  if (r) banned_.Mark(*r);
  return r;
}

}  // namespace keyverifier::keyring
