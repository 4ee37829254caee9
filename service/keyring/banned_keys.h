// BannedKeys: keys the operator refuses everywhere (config `banned_keys`):
// a key id of one server, or a public key whoever lists it (a compromised
// key, as Synapse ships a list of). BanningKeyRing marks them (VerifyKey::
// banned) in every answer of the keyring it wraps, so that events and
// requests they signed are refused with the reason, and lookups leave them
// out; they stay in the store and keep answering "is this key known", so a
// ban causes no refetching.
//
// Immutable after Create; thread-safe. Create fails with InvalidArgumentError
// naming the bad entry.
#ifndef KEYVERIFIER_SERVICE_KEYRING_BANNED_KEYS_H_
#define KEYVERIFIER_SERVICE_KEYRING_BANNED_KEYS_H_

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "service/core/crypto.h"
#include "service/keyring/keyring.h"

namespace keyverifier::keyring {

class BannedKeys {
 public:
  struct Entry {
    // Either server_name and key_id, or public_key (unpadded base64).
    std::string server_name;
    std::string key_id;
    std::string public_key;
  };
  static absl::StatusOr<BannedKeys> Create(const std::vector<Entry>& entries);

  bool empty() const { return by_id_.empty() && by_key_.empty(); }
  bool Banned(absl::string_view server, const core::VerifyKey& key) const;
  // Marks the banned keys of `result`.
  void Mark(KeyResult& result) const;

 private:
  std::set<std::pair<std::string, std::string>, std::less<>> by_id_;
  std::set<core::Ed25519PublicKey> by_key_;
};

class BanningKeyRing final : public KeyRing {
 public:
  BanningKeyRing(KeyRing& inner, const BannedKeys& banned) : inner_(inner), banned_(banned) {}
  void GetKeys(const KeyQuery& query, absl::Time deadline,
               async::Callback<KeyResult> done) override;
  void GetKeysEach(std::vector<KeyQuery> queries, absl::Time deadline,
                   std::shared_ptr<const EachDone> each) override;
  std::optional<KeyResult> TryGetKeysFromMemory(const KeyQuery& query) override;

 private:
  KeyRing& inner_;
  const BannedKeys& banned_;
};

}  // namespace keyverifier::keyring

#endif  // KEYVERIFIER_SERVICE_KEYRING_BANNED_KEYS_H_
