// Parsing and validating a server's key response: the body of
// GET /_matrix/key/v2/server, or one entry of a notary's
// /_matrix/key/v2/query answer (server-server API "Retrieving server keys").
//
// Checks: `server_name` is a valid server name (and the one expected);
// `valid_until_ts` is an integer; every key id in `verify_keys` and
// `old_verify_keys` with algorithm ed25519 is `ed25519:[a-zA-Z0-9_]+` with a
// 32-byte unpadded-base64 key; there is at least one ed25519 key in
// `verify_keys` and every one of them signed the response; old keys carry an
// integer `expired_ts`. Keys of other algorithms are ignored. When a notary is
// given, its counter-signature must verify with one of its pinned keys.
//
// Parsing, validating and storing are separate: this only parses and
// validates. Pure and thread-safe. Errors: InvalidArgumentError saying which
// server, key id or field was wrong.
#ifndef KEYVERIFIER_SERVICE_CORE_SERVER_KEYS_H_
#define KEYVERIFIER_SERVICE_CORE_SERVER_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/json_value.h"
#include "service/core/server_name.h"
#include "service/core/verify_key.h"

namespace keyverifier::core {

struct ServerKeys {
  std::string server_name;
  int64_t valid_until_ts = 0;
  std::vector<VerifyKey> verify_keys;      // valid_until_ts set on each
  std::vector<VerifyKey> old_verify_keys;  // expired_ts set on each
  // The signed JSON as received (direct fetch), or the canonical form of the
  // entry with its signatures (notary answer).
  std::string raw_json;
  // Notaries whose counter-signature was checked.
  std::vector<std::string> notaries;

  // Every key, current then old.
  std::vector<VerifyKey> AllKeys() const;
};

// A notary the operator trusts, with its pinned verify keys.
struct PinnedNotary {
  ServerName server_name;
  std::vector<VerifyKey> keys;
};

// Keys one response may list unless the caller says otherwise: far more than
// any server has rotated through, far fewer than a padded response would
// make us keep.
inline constexpr size_t kDefaultMaxKeysPerResponse = 256;

struct ServerKeyExpectations {
  // If set, `server_name` must equal it.
  std::optional<std::string> server_name;
  // If set, the response must carry this notary's valid signature.
  const PinnedNotary* notary = nullptr;
  // Keys (current and old together) the response may list, at most.
  size_t max_keys = kDefaultMaxKeysPerResponse;
};

// `json` is the response body; it is kept as raw_json.
absl::StatusOr<ServerKeys> ParseServerKeys(
    absl::string_view json, const ServerKeyExpectations& expect = {});

// The same for an already-parsed entry; raw_json is its canonical encoding.
absl::StatusOr<ServerKeys> ParseServerKeys(
    const Value& response, const ServerKeyExpectations& expect = {});

// A notary's answer: {"server_keys": [ ... ]}. Each entry is validated on its
// own (origin self-signatures and the notary's signature); one bad entry does
// not discard the good ones. Fails only if the envelope itself is unusable.
absl::StatusOr<std::vector<absl::StatusOr<ServerKeys>>> ParseNotaryResponse(
    absl::string_view json, const PinnedNotary& notary);

// The two halves of ParseNotaryResponse, for a caller that checks a large
// answer's entries on several threads: the envelope's entries (not yet
// checked), and one entry's check (ParseServerKeys expecting the notary's
// signature).
absl::StatusOr<std::vector<Value>> NotaryEntries(absl::string_view json,
                                                 const PinnedNotary& notary);
absl::StatusOr<ServerKeys> CheckNotaryEntry(const Value& entry, const PinnedNotary& notary,
                                            size_t max_keys = kDefaultMaxKeysPerResponse);

// The SHA-256 digests (raw 32 bytes) a key response lists in its
// `tls_fingerprints` (MSC1711's transition; removed from the current spec,
// still published by older servers). Entries that are not a base64 sha256
// of 32 bytes are skipped. Only meaningful for a response whose signatures
// were verified.
std::vector<std::string> TlsFingerprints(absl::string_view response_json);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_SERVER_KEYS_H_
