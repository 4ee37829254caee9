// KeyRing: where the service layer gets a remote server's verify keys.
//
// Implementations decide where keys come from (memory, the persistent store,
// the origin, notaries); callers only say what they need. Thread-safe: every
// implementation may be called from many worker threads at once.
//
// Errors: NotFoundError when no key for the server could be obtained,
// UnavailableError when sources failed, DeadlineExceededError when `deadline`
// passed first, InvalidArgumentError for a malformed server name.
#ifndef KEYVERIFIER_SERVICE_KEYRING_KEYRING_H_
#define KEYVERIFIER_SERVICE_KEYRING_KEYRING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/core/verify_key.h"

namespace keyverifier::keyring {

struct KeyQuery {
  std::string server_name;
  // Key ids wanted; empty means whatever keys are known.
  std::vector<std::string> key_ids;
  // Current keys must be known valid until at least this time (ms); older
  // answers make the keyring look again. 0: no requirement.
  int64_t minimum_valid_until_ts = 0;
  // Whether the result should carry the signed responses (raw_json); event
  // verification does not need them.
  bool include_raw_json = true;
};

struct KeySource {
  enum class Kind { kCache, kOrigin, kNotary };
  Kind kind = Kind::kCache;
  std::string notary;  // set for kNotary
};

struct KeyResult {
  std::string server_name;
  std::vector<core::VerifyKey> verify_keys;      // current keys
  std::vector<core::VerifyKey> old_verify_keys;  // old keys (expired_ts set)
  KeySource source;
  std::vector<std::string> raw_json;  // the signed responses behind the keys

  // Current then old keys, for signature checks.
  std::vector<core::VerifyKey> AllKeys() const {
    std::vector<core::VerifyKey> all = verify_keys;
    all.insert(all.end(), old_verify_keys.begin(), old_verify_keys.end());
    return all;
  }
};

class KeyRing {
 public:
  virtual ~KeyRing() = default;
  virtual absl::StatusOr<KeyResult> GetKeys(const KeyQuery& query,
                                            absl::Time deadline) = 0;
  // The answer GetKeys would give, if it is already in memory; never blocks
  // on a store or the network. nullopt (the default) sends the caller down
  // the slow path (GetKeys on a worker thread).
  virtual std::optional<KeyResult> TryGetKeysFromMemory(const KeyQuery& query) {
    return std::nullopt;
  }
};

}  // namespace keyverifier::keyring

#endif  // KEYVERIFIER_SERVICE_KEYRING_KEYRING_H_
