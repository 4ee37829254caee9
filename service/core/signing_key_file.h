// A homeserver's signing key file, in the format Synapse writes and reads
// (`signing_key_path`): one key per line, "ed25519 <version> <seed>", the
// seed the unpadded base64 of 32 bytes. The key id is "ed25519:<version>".
// The first key in the file is the one that signs; blank lines are skipped.
//
// Pure. Errors: InvalidArgumentError naming the line and what was wrong with
// it (never the seed itself).
#ifndef KEYVERIFIER_SERVICE_CORE_SIGNING_KEY_FILE_H_
#define KEYVERIFIER_SERVICE_CORE_SIGNING_KEY_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/crypto.h"

namespace keyverifier::core {

struct NamedSigningKey {
  std::string key_id;  // "ed25519:<version>"
  Ed25519SigningKey key;
};

absl::StatusOr<NamedSigningKey> ParseSigningKeyFile(absl::string_view text);

// The file's line for `key` (what ParseSigningKeyFile reads back), for tools
// and tests.
std::string SigningKeyFileLine(absl::string_view version, absl::string_view seed);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_SIGNING_KEY_FILE_H_
