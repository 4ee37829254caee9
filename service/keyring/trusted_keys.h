// Trusted keys from a file (the CLI's KEYS.json, the service's
// --trusted_keys): the keys an operator trusts, either as
//   - a JSON array of /_matrix/key/v2/server responses (each validated first:
//     self-signatures, key ids, sizes), or
//   - a map of keys already trusted:
//     {"server.name": {"ed25519:id": {"key": "<base64>", "valid_until_ts": MS},
//                      "ed25519:old": {"key": "<base64>", "expired_ts": MS}}}
// Errors: InvalidArgumentError naming the entry, server and key id.
#ifndef KEYVERIFIER_SERVICE_KEYRING_TRUSTED_KEYS_H_
#define KEYVERIFIER_SERVICE_KEYRING_TRUSTED_KEYS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/verify_key.h"
#include "service/keyring/keyring.h"

namespace keyverifier::keyring {

using KeysByServer = std::map<std::string, std::vector<core::VerifyKey>>;

absl::StatusOr<KeysByServer> ParseKeysFile(absl::string_view json);

// A KeyRing that answers from a fixed set of trusted keys (pinned keys of a
// private federation, or keys an operator vouches for). Never fetches;
// servers it does not know are NotFound. Thread-safe (immutable).
class TrustedKeyRing final : public KeyRing {
 public:
  explicit TrustedKeyRing(KeysByServer keys) : keys_(std::move(keys)) {}
  void GetKeys(const KeyQuery& query, absl::Time deadline,
               async::Callback<KeyResult> done) override {
    done(Lookup(query));
  }
  // Never blocks: the answer for a pinned server, nullopt for any other.
  std::optional<KeyResult> TryGetKeysFromMemory(const KeyQuery& query) override;

 private:
  absl::StatusOr<KeyResult> Lookup(const KeyQuery& query) const;
  const KeysByServer keys_;
};

}  // namespace keyverifier::keyring

#endif  // KEYVERIFIER_SERVICE_KEYRING_TRUSTED_KEYS_H_
