#include "tests/testing/key_fixtures.h"

#include <cstdlib>

#include "service/core/base64.h"
#include "service/core/signed_json.h"
#include "tests/testing/server_name.h"

namespace keyverifier::testing {
namespace {

core::Value KeyEntry(char tag) {
  core::Value k = core::Value::Object();
  k.Set("key", core::Value::String(
                   core::EncodeBase64Unpadded(core::AsStringView(TestKey(tag).public_key()))));
  return k;
}

void OrDie(const absl::Status& s) {
  if (!s.ok()) std::abort();
}

}  // namespace

core::Ed25519SigningKey TestKey(char tag) {
  return *core::Ed25519SigningKey::FromSeed(std::string(32, tag));
}

core::Value KeyResponse(const ServerKeysSpec& spec) {
  core::Value v = core::Value::Object();
  v.Set("server_name", core::Value::String(spec.server));
  v.Set("valid_until_ts", core::Value::Integer(spec.valid_until_ts));
  core::Value verify = core::Value::Object();
  for (const auto& [id, tag] : spec.keys) verify.Set(id, KeyEntry(tag));
  v.Set("verify_keys", std::move(verify));
  core::Value old = core::Value::Object();
  for (const OldKey& o : spec.old_keys) {
    core::Value k = KeyEntry(o.tag);
    k.Set("expired_ts", core::Value::Integer(o.expired_ts));
    old.Set(o.key_id, std::move(k));
  }
  v.Set("old_verify_keys", std::move(old));
  for (const auto& [id, tag] : spec.keys) {
    OrDie(core::SignJson(&v, spec.server, id, TestKey(tag)));
  }
  return v;
}

std::string KeyResponseJson(const ServerKeysSpec& spec) {
  return *core::CanonicalJson(KeyResponse(spec));
}

core::Value NotarySigned(core::Value response, const std::string& notary,
                         const std::string& key_id, char tag) {
  OrDie(core::SignJson(&response, notary, key_id, TestKey(tag)));
  return response;
}

std::string NotaryAnswer(const std::vector<core::Value>& entries) {
  core::Value v = core::Value::Object();
  v.Set("server_keys", core::Value::Array(entries));
  return *core::CanonicalJson(v);
}

core::PinnedNotary Pinned(const std::string& notary, const std::string& key_id, char tag) {
  core::PinnedNotary p{Name(notary), {}};
  core::VerifyKey k;
  k.key_id = key_id;
  k.public_key = TestKey(tag).public_key();
  p.keys.push_back(k);
  return p;
}

}  // namespace keyverifier::testing
