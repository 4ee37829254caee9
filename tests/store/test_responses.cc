#include "tests/store/test_responses.h"

#include <utility>

#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/json_value.h"
#include "service/core/signed_json.h"

namespace keyverifier::store::testing {
namespace {

core::Ed25519SigningKey SigningKey(char seed) {
  absl::StatusOr<core::Ed25519SigningKey> key =
      core::Ed25519SigningKey::FromSeed(
          std::string(core::kEd25519SeedSize, seed));
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

}  // namespace

core::Ed25519PublicKey PublicKeyOf(char seed) {
  return SigningKey(seed).public_key();
}

core::ServerKeys SignedResponse(const std::string& server,
                                int64_t valid_until_ts,
                                const std::vector<TestKey>& keys) {
  core::Value body = core::Value::Object();
  body.Set("server_name", core::Value::String(server));
  body.Set("valid_until_ts", core::Value::Integer(valid_until_ts));
  core::Value verify_keys = core::Value::Object();
  core::Value old_keys = core::Value::Object();
  for (const TestKey& k : keys) {
    core::Value entry = core::Value::Object();
    entry.Set("key", core::Value::String(core::EncodeBase64Unpadded(
                         core::AsStringView(PublicKeyOf(k.seed)))));
    if (k.expired_ts.has_value()) {
      entry.Set("expired_ts", core::Value::Integer(*k.expired_ts));
      old_keys.Set(k.key_id, std::move(entry));
    } else {
      verify_keys.Set(k.key_id, std::move(entry));
    }
  }
  body.Set("verify_keys", std::move(verify_keys));
  body.Set("old_verify_keys", std::move(old_keys));
  for (const TestKey& k : keys) {
    if (k.expired_ts.has_value()) continue;
    absl::Status s = core::SignJson(&body, server, k.key_id, SigningKey(k.seed));
    EXPECT_TRUE(s.ok()) << s;
  }
  std::string json = core::ToJson(body);
  absl::StatusOr<core::ServerKeys> parsed = core::ParseServerKeys(json);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << json;
  return parsed.ok() ? *std::move(parsed) : core::ServerKeys();
}

}  // namespace keyverifier::store::testing
