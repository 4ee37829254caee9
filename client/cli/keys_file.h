// KEYS.json for the offline verifier: the keys an operator trusts, either as
//   - a JSON array of /_matrix/key/v2/server responses (each validated first:
//     self-signatures, key ids, sizes), or
//   - a map of keys already trusted:
//     {"server.name": {"ed25519:id": {"key": "<base64>", "valid_until_ts": MS},
//                      "ed25519:old": {"key": "<base64>", "expired_ts": MS}}}
// Errors: InvalidArgumentError naming the entry, server and key id.
#ifndef KEYVERIFIER_CLIENT_CLI_KEYS_FILE_H_
#define KEYVERIFIER_CLIENT_CLI_KEYS_FILE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/verify_key.h"

namespace keyverifier::cli {

using KeysByServer = std::map<std::string, std::vector<core::VerifyKey>>;

absl::StatusOr<KeysByServer> ParseKeysFile(absl::string_view json);

}  // namespace keyverifier::cli

#endif  // KEYVERIFIER_CLIENT_CLI_KEYS_FILE_H_
