// Signed key responses for key store tests, built with the core's signer and
// parsed by core::ParseServerKeys, so the store sees what the keyring will
// hand it.
#ifndef KEYVERIFIER_TESTS_STORE_TEST_RESPONSES_H_
#define KEYVERIFIER_TESTS_STORE_TEST_RESPONSES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "service/core/crypto.h"
#include "service/core/server_keys.h"

namespace keyverifier::store::testing {

struct TestKey {
  TestKey(std::string id, char s, std::optional<int64_t> expired = {})
      : key_id(std::move(id)), seed(s), expired_ts(expired) {}

  std::string key_id;  // "ed25519:..."
  char seed = 'a';     // the signing key is derived from 32 of these bytes
  // Set: listed in old_verify_keys with this expired_ts; unset: a current
  // key in verify_keys, which signs the response.
  std::optional<int64_t> expired_ts;
};

core::Ed25519PublicKey PublicKeyOf(char seed);

// A signed response of `server`, parsed. Fails the test if parsing fails.
core::ServerKeys SignedResponse(const std::string& server,
                                int64_t valid_until_ts,
                                const std::vector<TestKey>& keys);

}  // namespace keyverifier::store::testing

#endif  // KEYVERIFIER_TESTS_STORE_TEST_RESPONSES_H_
