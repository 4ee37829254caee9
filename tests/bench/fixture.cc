#include "tests/bench/fixture.h"

#include <sodium.h>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"

namespace keyverifier::bench {

using namespace ::keyverifier::core;  // NOLINT: fixture code reads better

namespace {

// A realistic m.room.message of about 1.2 KB from `server`, unsigned.
std::string EventText(absl::string_view server, int64_t origin_server_ts) {
  std::string body;
  while (body.size() < 240) {
    body += "Federation keeps rooms in sync across servers; every event is "
            "signed by its origin. ";
  }
  return absl::StrCat(R"({
    "type": "m.room.message",
    "room_id": "!OGEhHVWSdvArJzumhm:)", server, R"(",
    "sender": "@alice.smith:)", server, R"(",
    "origin_server_ts": )", origin_server_ts, R"(,
    "depth": 48213,
    "content": {
      "msgtype": "m.text",
      "body": ")", body, R"(",
      "format": "org.matrix.custom.html",
      "formatted_body": "<p>)", body.substr(0, 120), R"(</p>",
      "m.mentions": {"user_ids": ["@bob:other.example.net"]},
      "m.relates_to": {"m.in_reply_to": {"event_id": "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"}}
    },
    "prev_events": ["$0K5Ow9gQVdDoh6pVPXtTEwwI-C2tSfV-9FsTy_5ZKRQ"],
    "auth_events": [
      "$Cg6ZdvPsYC3prqSiJ2tX8W91JGDEnGs8DkpKq5Q4uyI",
      "$5hnSNx0E3Qv6a8_hNTnDd23lu9q9OuvpZGXDSy1Ixsc",
      "$jXQJjRBaNaF2M5lUQ94JOs8nP4MbTUMQ_Io7p8nKr3k"
    ],
    "unsigned": {"age_ts": 1699999990000}
  })");
}

// The fixture: that event from kServer, signed as a server would.
Fixture MakeFixture() {
  Fixture f;
  f.room = *LookupRoomVersion("10");
  Ed25519SigningKey key = *Ed25519SigningKey::FromSeed(std::string(32, '\x42'));
  Value event = *ParseJson(EventText(kServer, 1699999990000));
  HashAndSignEvent(&event, *f.room, kServer, kKeyId,
                   key)
      .IgnoreError();
  f.event_json = ToJson(event);
  PreparedEvent p = *PrepareEvent(f.event_json, *f.room);
  f.signed_bytes = p.signed_bytes;
  f.signature = *DecodeBase64(p.signatures.Find(kServer)
                                  ->Find(kKeyId)
                                  ->string_value());
  VerifyKey vk;
  vk.key_id = kKeyId;
  vk.public_key = key.public_key();
  vk.valid_until_ts = kNow + 3600000;
  f.keys.push_back(vk);
  return f;
}

}  // namespace

bool BareVerify(const Fixture& f) {
  return crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(f.signature.data()),
             reinterpret_cast<const unsigned char*>(f.signed_bytes.data()),
             f.signed_bytes.size(), f.keys[0].public_key.data()) == 0;
}

core::KeyLookup FixtureKeys(const Fixture& f) {
  return [&f](absl::string_view) { return absl::Span<const core::VerifyKey>(f.keys); };
}

std::string SignedEvent(const std::string& server, const std::string& key_id,
                        const core::Ed25519SigningKey& key, int64_t origin_server_ts) {
  Value event = *ParseJson(EventText(server, origin_server_ts));
  HashAndSignEvent(&event, **LookupRoomVersion("10"), server, key_id, key).IgnoreError();
  return ToJson(event);
}

const Fixture& GetFixture() {
  static const Fixture* f = new Fixture(MakeFixture());
  return *f;
}

bool FullPathValid(const Fixture& f, const core::KeyLookup& keys) {
  absl::StatusOr<core::PreparedEvent> p = core::PrepareEvent(f.event_json, *f.room);
  return p.ok() && core::VerifyPreparedEvent(*p, keys).outcome ==
                       core::EventVerdict::Outcome::kValid;
}

core::ServerKeys FixtureKeyResponse() {
  core::ServerKeys response;
  response.server_name = kServer;
  response.valid_until_ts = kNow + 365LL * 24 * 3600 * 1000;
  for (core::VerifyKey k : GetFixture().keys) {
    k.valid_until_ts = response.valid_until_ts;
    response.verify_keys.push_back(k);
  }
  response.raw_json = absl::StrCat(
      R"({"old_verify_keys":{},"server_name":")", kServer, R"(","signatures":{")", kServer,
      R"(":{")", kKeyId, R"(":")", std::string(86, 'A'), R"("}},"valid_until_ts":)",
      response.valid_until_ts, R"(,"verify_keys":{")", kKeyId, R"(":{"key":")",
      std::string(43, 'A'), R"("}}})");
  return response;
}

}  // namespace keyverifier::bench
