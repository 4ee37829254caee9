// Writes the signed seed inputs of the fuzz corpora (events, key responses,
// notary answers, X-Matrix requests), all signed with the spec's test key
// (appendix "Cryptographic Test Vectors"), which the fuzz targets trust.
// The output is checked in under corpus/; run again after changing it:
//   bazel run //tests/fuzz:make_seeds -- "$PWD/tests/fuzz/corpus"
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"
#include "service/core/signed_json.h"
#include "service/core/x_matrix.h"

namespace keyverifier::core {
namespace {

constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";

std::string dir;  // NOLINT

const Ed25519SigningKey& Key() {
  static const auto* key =
      new Ed25519SigningKey(*Ed25519SigningKey::FromSeed(*DecodeBase64(kSpecSeed)));
  return *key;
}

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string path = absl::StrCat(dir, "/", target, "/", name);
  std::ofstream(path, std::ios::binary) << bytes;
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

Value Parse(const std::string& json) {
  absl::StatusOr<Value> v = ParseJson(json);
  if (!v.ok()) {
    std::fprintf(stderr, "%s: %s\n", json.c_str(), v.status().ToString().c_str());
    std::abort();
  }
  return *std::move(v);
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::abort();
  }
}

// An event of room version `version`, signed by `servers` (all with the spec
// key as ed25519:1).
void Event(const std::string& name, int version, const std::string& json,
           const std::vector<std::string>& servers = {"domain"}, bool break_hash = false) {
  Value event = Parse(json);
  const RoomVersion& room = **LookupRoomVersion(absl::StrCat(version));
  for (const std::string& server : servers) {
    Check(HashAndSignEvent(&event, room, server, "ed25519:1", Key()));
  }
  if (break_hash) event.FindMutable("content")->Set("body", Value::String("edited"));
  Write("event_fuzzer", name, ToJson(event));
}

std::string PublicKey() { return EncodeBase64Unpadded(AsStringView(Key().public_key())); }

Value KeyResponse(const std::string& server, int64_t valid_until, const std::string& extra) {
  Value r = Parse(absl::StrCat(R"({"server_name":")", server, R"(","valid_until_ts":)",
                               valid_until, R"(,"verify_keys":{"ed25519:1":{"key":")",
                               PublicKey(), R"("}},"old_verify_keys":{"ed25519:old":{"key":")",
                               PublicKey(), R"(","expired_ts":1500000}})", extra, "}"));
  Check(SignJson(&r, server, "ed25519:1", Key()));
  return r;
}

void Events() {
  Event("v1_message_legacy_numbers.json", 1,
        R"({"event_id":"$abc:domain","room_id":"!r:domain","sender":"@u:domain",)"
        R"("origin":"domain","origin_server_ts":1000000,"type":"m.room.message",)"
        R"("prev_events":[["$p:domain",{"sha256":"AAAA"}]],"auth_events":[],"depth":5,)"
        R"("content":{"body":"hi","n":1.5,"e":1e10,"big":12345678901234567890}})");
  Event("v3_member_join.json", 3,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.member","state_key":"@u:domain","prev_events":["$a"],)"
        R"("auth_events":["$b"],"depth":2,"content":{"membership":"join",)"
        R"("displayname":"U","avatar_url":"mxc://domain/x"},"unsigned":{"age":5}})");
  Event("v4_create.json", 4,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.create","state_key":"","prev_events":[],"auth_events":[],)"
        R"("depth":1,"content":{"creator":"@u:domain","room_version":"4","m.federate":true}})");
  Event("v6_power_levels.json", 6,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.power_levels","state_key":"","prev_events":["$a"],)"
        R"("auth_events":[],"depth":3,"content":{"ban":50,"events":{"m.room.name":50},)"
        R"("events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,)"
        R"("users":{"@u:domain":100},"users_default":0,"notifications":{"room":50}}})");
  Event("v8_restricted_join_rules.json", 8,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.join_rules","state_key":"","prev_events":["$a"],)"
        R"("auth_events":[],"depth":4,"content":{"join_rule":"restricted",)"
        R"("allow":[{"type":"m.room_membership","room_id":"!s:domain"}]}})");
  Event("v9_restricted_join.json", 9,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.member","state_key":"@u:domain","prev_events":["$a"],)"
        R"("auth_events":[],"depth":6,"content":{"membership":"join",)"
        R"("join_authorised_via_users_server":"@admin:other.example"}})",
        {"domain", "other.example"});
  Event("v10_message_unicode.json", 10,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.message","prev_events":["$a"],"auth_events":[],"depth":7,)"
        R"("content":{"msgtype":"m.text","body":"\u65e5\u672c\u8a9e \ud83d\ude00 \"q\" \\ \n",)"
        R"("format":"org.matrix.custom.html","formatted_body":"<b>x</b>"}})");
  Event("v11_third_party_invite.json", 11,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.member","state_key":"@v:domain","prev_events":["$a"],)"
        R"("auth_events":[],"depth":8,"content":{"membership":"invite",)"
        R"("third_party_invite":{"display_name":"v","signed":{"mxid":"@v:domain",)"
        R"("token":"t","signatures":{"id.example":{"ed25519:0":"c2ln"}}}}}})");
  Event("v11_redaction.json", 11,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.redaction","redacts":"$x","prev_events":["$a"],)"
        R"("auth_events":[],"depth":9,"content":{"redacts":"$x","reason":"spam"}})");
  Event("v12_create.json", 12,
        R"({"sender":"@u:domain","origin_server_ts":1000000,"type":"m.room.create",)"
        R"("state_key":"","prev_events":[],"auth_events":[],"depth":1,)"
        R"("content":{"room_version":"12","additional_creators":["@w:domain"]}})");
  Event("v5_hash_mismatch.json", 5,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.message","prev_events":["$a"],"auth_events":[],"depth":10,)"
        R"("content":{"body":"original"}})",
        {"domain"}, /*break_hash=*/true);
  Event("v7_history_visibility.json", 7,
        R"({"room_id":"!r:domain","sender":"@u:domain","origin_server_ts":1000000,)"
        R"("type":"m.room.history_visibility","state_key":"","prev_events":["$a"],)"
        R"("auth_events":[],"depth":11,"content":{"history_visibility":"shared"}})");
}

void KeyResponses() {
  Write("server_keys_fuzzer", "domain.json", ToJson(KeyResponse("domain", 1700086400000, "")));
  Write("server_keys_fuzzer", "fingerprints.json",
        ToJson(KeyResponse("matrix.example.org:8448", 1700086400000,
                           R"(,"tls_fingerprints":[{"sha256":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"}])")));
  Write("server_keys_fuzzer", "ipv6_literal.json",
        ToJson(KeyResponse("[2001:db8::1]:8448", 1700086400000,
                           R"(,"verify_keys_extra":{"curve25519:x":{"key":"AAAA"}})")));
  Write("server_keys_fuzzer", "ipv4_literal.json",
        ToJson(KeyResponse("192.0.2.1", 9007199254740991, "")));

  // Notary answers from notary.example.org (the spec key as ed25519:1).
  auto entry = [](const std::string& server, int64_t valid_until) {
    Value r = KeyResponse(server, valid_until, "");
    Check(SignJson(&r, "notary.example.org", "ed25519:1", Key()));
    return r;
  };
  Value answer = Value::Object();
  answer.Set("server_keys", Value::Array({entry("a.example", 1700086400000),
                                          entry("b.example:8448", 1700000000000),
                                          KeyResponse("unsigned-by-notary.example", 1, "")}));
  Write("notary_fuzzer", "three_entries.json", ToJson(answer));
  answer.Set("server_keys", Value::Array({entry("[::1]", 1700086400000)}));
  Write("notary_fuzzer", "one_entry.json", ToJson(answer));
  Write("notary_fuzzer", "empty.json", R"({"server_keys":[]})");
}

void Requests() {
  FederationRequest request;
  request.method = "PUT";
  request.uri = "/_matrix/federation/v1/send/1";
  request.destination = "destination.hs.example.com";
  request.body = R"({"pdus":[],"edus":[],"origin":"origin.hs.example.com"})";
  const std::string header =
      *SignFederationRequest(request, "origin.hs.example.com", "ed25519:1", Key());
  Write("x_matrix_fuzzer", "signed_send.txt", header + "\n" + request.body);
  request.body = "";
  Write("x_matrix_fuzzer", "signed_no_body.txt",
        *SignFederationRequest(request, "origin.hs.example.com", "ed25519:1", Key()) + "\n");
  request.body = R"({"edus":[{"content":{"n":1.5,"big":123456789012345678901},"edu_type":"x"}]})";
  Write("x_matrix_fuzzer", "signed_legacy_numbers.txt",
        *SignFederationRequest(request, "origin.hs.example.com", "ed25519:1", Key()) + "\n" +
            request.body);
}

}  // namespace
}  // namespace keyverifier::core

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  keyverifier::core::dir = argv[1];
  keyverifier::core::Events();
  keyverifier::core::KeyResponses();
  keyverifier::core::Requests();
  return 0;
}
