// Signed key responses for tests: what an origin serves at
// /_matrix/key/v2/server and what a notary returns, made with the core's own
// signing (the core's verification is tested against the spec's vectors and
// the Python reference elsewhere).
#ifndef KEYVERIFIER_TESTS_TESTING_KEY_FIXTURES_H_
#define KEYVERIFIER_TESTS_TESTING_KEY_FIXTURES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "service/core/crypto.h"
#include "service/core/json.h"
#include "service/core/server_keys.h"

namespace keyverifier::testing {

// A deterministic signing key: the seed is `tag` repeated.
core::Ed25519SigningKey TestKey(char tag);

struct OldKey {
  std::string key_id;
  char tag;
  int64_t expired_ts;
};

// The body of GET /_matrix/key/v2/server for `server`, signed by every
// current key.
struct ServerKeysSpec {
  ServerKeysSpec(std::string s, std::vector<std::pair<std::string, char>> k, int64_t until,
                 std::vector<OldKey> old = {})
      : server(std::move(s)), keys(std::move(k)), valid_until_ts(until), old_keys(std::move(old)) {}

  std::string server;
  std::vector<std::pair<std::string, char>> keys;  // key id, TestKey tag
  int64_t valid_until_ts = 0;
  std::vector<OldKey> old_keys;
};
core::Value KeyResponse(const ServerKeysSpec& spec);
std::string KeyResponseJson(const ServerKeysSpec& spec);

// `response` counter-signed by `notary` with `key_id`/`tag`.
core::Value NotarySigned(core::Value response, const std::string& notary,
                         const std::string& key_id, char tag);
// {"server_keys": [entries...]}
std::string NotaryAnswer(const std::vector<core::Value>& entries);

// The notary as an operator pins it.
core::PinnedNotary Pinned(const std::string& notary, const std::string& key_id, char tag);

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_TESTING_KEY_FIXTURES_H_
