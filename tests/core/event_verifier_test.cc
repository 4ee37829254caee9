#include "service/core/event_verifier.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"

namespace keyverifier::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Outcome = EventVerdict::Outcome;

constexpr int64_t kDay = 24 * 3600 * 1000;
constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kEventTs = 1'690'000'000'000;

const RoomVersion& Room(int version) {
  absl::StatusOr<const RoomVersion*> room =
      LookupRoomVersion(absl::StrCat(version));
  EXPECT_TRUE(room.ok()) << room.status();
  return **room;
}

Value Parse(absl::string_view json) {
  absl::StatusOr<Value> v = ParseJson(json);
  EXPECT_TRUE(v.ok()) << json << ": " << v.status();
  return v.ok() ? *std::move(v) : Value();
}

Ed25519SigningKey KeyFromSeed(absl::string_view seed) {
  absl::StatusOr<Ed25519SigningKey> key = Ed25519SigningKey::FromSeed(seed);
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

const Ed25519SigningKey& KeyA() {
  static const auto* key = new Ed25519SigningKey(KeyFromSeed(std::string(32, 'A')));
  return *key;
}
const Ed25519SigningKey& KeyB() {
  static const auto* key = new Ed25519SigningKey(KeyFromSeed(std::string(32, 'B')));
  return *key;
}
const Ed25519SigningKey& KeyC() {
  static const auto* key = new Ed25519SigningKey(KeyFromSeed(std::string(32, 'C')));
  return *key;
}

VerifyKey Current(std::string key_id, const Ed25519SigningKey& key,
                  int64_t valid_until_ts = kNow + kDay) {
  VerifyKey vk;
  vk.key_id = std::move(key_id);
  vk.public_key = key.public_key();
  vk.valid_until_ts = valid_until_ts;
  return vk;
}

// The keys the verifier knows, per server.
class KeyTable {
 public:
  // a.example: ed25519:a1 and ed25519:a2 (key C); b.example: ed25519:b1;
  // c.example: ed25519:c1.
  static KeyTable Default() {
    KeyTable t;
    t.Set("a.example",
          {Current("ed25519:a1", KeyA()), Current("ed25519:a2", KeyC())});
    t.Set("b.example", {Current("ed25519:b1", KeyB())});
    t.Set("c.example", {Current("ed25519:c1", KeyC())});
    return t;
  }
  void Set(const std::string& server, std::vector<VerifyKey> keys) {
    keys_[server] = std::move(keys);
  }
  KeyLookup Lookup() const {
    return [this](absl::string_view server) -> absl::Span<const VerifyKey> {
      auto it = keys_.find(server);
      if (it == keys_.end()) return {};
      return it->second;
    };
  }

 private:
  std::map<std::string, std::vector<VerifyKey>, std::less<>> keys_;
};

struct Signer {
  std::string server;
  std::string key_id;
  const Ed25519SigningKey* key;
};
const Signer kSignerA{"a.example", "ed25519:a1", &KeyA()};
const Signer kSignerB{"b.example", "ed25519:b1", &KeyB()};
const Signer kSignerC{"c.example", "ed25519:c1", &KeyC()};

void Sign(Value* event, int version, const std::vector<Signer>& signers) {
  for (const Signer& s : signers) {
    absl::Status status =
        HashAndSignEvent(event, Room(version), s.server, s.key_id, *s.key);
    ASSERT_TRUE(status.ok()) << status;
  }
}

// Signs an m.room.message event as it stands, whatever its `hashes` say (or
// without any), redacting it by hand: such events keep none of their content.
void SignAsIs(Value* event, int version, const Signer& s) {
  Value redacted = *event;
  redacted.Erase("unsigned");
  redacted.Set("content", Value::Object());
  absl::Status status = SignJson(&redacted, s.server, s.key_id, *s.key,
                                 Room(version).number_policy);
  ASSERT_TRUE(status.ok()) << status;
  event->Set("signatures", *redacted.Find("signatures"));
}

Value* Path(Value* v, std::initializer_list<absl::string_view> path) {
  for (absl::string_view step : path) {
    v = v->FindMutable(step);
    if (v == nullptr) {
      ADD_FAILURE() << "no " << step;
      static Value dummy;
      return &dummy;
    }
  }
  return v;
}

// An m.room.message from @alice:a.example; v1/v2 carry an event id of
// a.example.
Value MessageEvent(int version) {
  Value e = Parse(
      R"({"auth_events":[],"content":{"body":"hello"},"depth":5,)"
      R"("origin_server_ts":1690000000000,"prev_events":[],)"
      R"("room_id":"!r:a.example","sender":"@alice:a.example",)"
      R"("type":"m.room.message","unsigned":{"age":10}})");
  if (version <= 2) e.Set("event_id", Value::String("$e1:a.example"));
  return e;
}

absl::StatusOr<PreparedEvent> Prepare(const Value& event, int version) {
  return PrepareEvent(ToJson(event), Room(version));
}

EventVerdict Verify(const Value& event, int version,
                    const KeyTable& keys = KeyTable::Default()) {
  absl::StatusOr<PreparedEvent> p = Prepare(event, version);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return EventVerdict();
  return VerifyPreparedEvent(*p, keys.Lookup());
}

// The names as written, for comparing with literals.
std::vector<std::string> Texts(const std::vector<ServerName>& names) {
  std::vector<std::string> out;
  for (const ServerName& n : names) out.push_back(n.str());
  return out;
}

std::vector<std::string> RequiredServers(const Value& event, int version) {
  absl::StatusOr<PreparedEvent> p = Prepare(event, version);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? Texts(p->required_servers) : std::vector<std::string>{"<error>"};
}

// --- The spec's test vectors ------------------------------------------------
//
// Matrix spec appendices, "Cryptographic Test Vectors": the signing key seed,
// server "domain", key "ed25519:1", and the two event-signing examples (input
// and signed output), which use the redaction rules before room version 11.

constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
// The public key of that seed (not printed in the spec; cross-checked with an
// independent ed25519 implementation, whose signature of {} matched the
// spec's).
constexpr char kSpecPublicKey[] = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI";

constexpr char kSpecMinimalEvent[] = R"({
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {
        "age_ts": 1000000
    }
})";
constexpr char kSpecMinimalSigned[] = R"({
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {
        "sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {
        "age_ts": 1000000
    }
})";
constexpr char kSpecRedactableEvent[] = R"({
    "content": {
        "body": "Here is the message content"
    },
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {
        "age_ts": 1000000
    }
})";
constexpr char kSpecRedactableSigned[] = R"({
    "content": {
        "body": "Here is the message content"
    },
    "event_id": "$0:domain",
    "hashes": {
        "sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"
    },
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"
        }
    },
    "unsigned": {
        "age_ts": 1000000
    }
})";

const Ed25519SigningKey& SpecKey() {
  static const auto* key = [] {
    absl::StatusOr<std::string> seed = DecodeBase64(kSpecSeed);
    EXPECT_TRUE(seed.ok()) << seed.status();
    return new Ed25519SigningKey(KeyFromSeed(*seed));
  }();
  return *key;
}

KeyTable SpecKeys() {
  KeyTable t;
  t.Set("domain", {Current("ed25519:1", SpecKey())});
  return t;
}

TEST(EventVerifierSpecTest, SigningKey) {
  EXPECT_EQ(EncodeBase64Unpadded(AsStringView(SpecKey().public_key())),
            kSpecPublicKey);
}

TEST(EventVerifierSpecTest, HashAndSignEventGivesTheSpecOutput) {
  struct Case {
    const char* input;
    const char* output;
    const char* sha256;
    const char* signature;
  };
  const Case cases[] = {
      {kSpecMinimalEvent, kSpecMinimalSigned,
       "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos",
       "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAW"
       "bOoMszkwsQma+lYAg"},
      {kSpecRedactableEvent, kSpecRedactableSigned,
       "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g",
       "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYH"
       "YMGCA5McEiVPdhzBA"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    Value event = Parse(c.input);
    ASSERT_TRUE(
        HashAndSignEvent(&event, Room(1), "domain", "ed25519:1", SpecKey()).ok());
    EXPECT_EQ(Path(&event, {"hashes", "sha256"})->string_value(), c.sha256);
    EXPECT_EQ(Path(&event, {"signatures", "domain", "ed25519:1"})->string_value(),
              c.signature);
    // Everything else as given, unsigned included.
    EXPECT_EQ(ToJson(event), ToJson(Parse(c.output)));
  }
}

TEST(EventVerifierSpecTest, SpecOutputVerifies) {
  const KeyTable keys = SpecKeys();
  for (int version = 1; version <= 12; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    // The redactable example carries an event id, so every version can read
    // it; from v11 `origin` is no longer signed, so the signature fails.
    absl::StatusOr<PreparedEvent> p =
        PrepareEvent(kSpecRedactableSigned, Room(version));
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(p->content_hash_matches);
    EXPECT_EQ(p->content_hash, "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g");
    EXPECT_EQ(Texts(p->required_servers), std::vector<std::string>{"domain"});
    EventVerdict v = VerifyPreparedEvent(*p, keys.Lookup());
    if (version <= 10) {
      EXPECT_EQ(v.outcome, Outcome::kValid) << v.message;
      EXPECT_EQ(v.reason, Reason::kOk);
      ASSERT_EQ(v.checked.size(), 1u);
      EXPECT_EQ(v.checked[0].server, "domain");
      EXPECT_THAT(v.checked[0].key_ids, ElementsAre("ed25519:1"));
    } else {
      EXPECT_EQ(v.outcome, Outcome::kInvalid);
      EXPECT_EQ(v.reason, Reason::kBadSignature);
    }
    if (version <= 2) {
      EXPECT_EQ(p->event_id, "$0:domain");
    }

    // The minimal example has no event id: unusable in v1 and v2.
    absl::StatusOr<PreparedEvent> minimal =
        PrepareEvent(kSpecMinimalSigned, Room(version));
    if (version <= 2) {
      ASSERT_FALSE(minimal.ok());
      EXPECT_THAT(minimal.status().message(), HasSubstr("event_id is missing"));
      continue;
    }
    ASSERT_TRUE(minimal.ok()) << minimal.status();
    EXPECT_TRUE(minimal->content_hash_matches);
    EventVerdict mv = VerifyPreparedEvent(*minimal, keys.Lookup());
    EXPECT_EQ(mv.outcome, version <= 10 ? Outcome::kValid : Outcome::kInvalid)
        << mv.message;
    if (version == 3) {
      EXPECT_EQ(minimal->event_id,
                "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc");
    }
  }
}

TEST(EventVerifierSpecTest, SpecSignedBytesOfTheRedactableExample) {
  absl::StatusOr<PreparedEvent> p = PrepareEvent(kSpecRedactableSigned, Room(1));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->signed_bytes,
            R"({"content":{},"event_id":"$0:domain","hashes":{"sha256":)"
            R"("onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},)"
            R"("origin":"domain","origin_server_ts":1000000,)"
            R"("room_id":"!r:domain","sender":"@u:domain",)"
            R"("type":"m.room.message"})");
  EXPECT_EQ(ToJson(*RedactedEvent(*p)),
            R"({"content":{},"event_id":"$0:domain","hashes":{"sha256":)"
            R"("onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},)"
            R"("origin":"domain","origin_server_ts":1000000,)"
            R"("room_id":"!r:domain","sender":"@u:domain",)"
            R"("signatures":{"domain":{"ed25519:1":"Wm+VzmOUOz08Ds+0NTWb1d4CZrVs)"
            R"(JSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}},)"
            R"("type":"m.room.message"})");
}

// --- Verdicts -----------------------------------------------------------------

struct VerdictCase {
  const char* name;
  // Builds the event for the room version (signing it or not).
  std::function<void(Value*, int)> make;
  Outcome outcome;
  Reason reason;
  std::vector<std::string> message_has;
  // For valid verdicts: the key ids checked for a.example.
  std::vector<std::string> checked_a = {};
};

void Resign(Value* e, int version, const Signer& s) { Sign(e, version, {s}); }

std::string SignatureOfOtherBytes(const Ed25519SigningKey& key) {
  return EncodeBase64Unpadded(key.Sign("something else"));
}

std::vector<VerdictCase> VerdictCases() {
  return {
      {"valid", [](Value* e, int v) { Resign(e, v, kSignerA); }, Outcome::kValid,
       Reason::kOk, {}, {"ed25519:a1"}},
      {"unsigned changed after signing",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         e->Set("unsigned", Parse(R"({"age":99,"x":[1]})"));
       },
       Outcome::kValid, Reason::kOk, {}, {"ed25519:a1"}},
      {"content changed after signing",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         *Path(e, {"content", "body"}) = Value::String("changed");
       },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch,
       {"content hash does not match"}, {"ed25519:a1"}},
      {"content removed after signing",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         e->Erase("content");
       },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch,
       {"content hash does not match"}, {"ed25519:a1"}},
      {"hashes missing",
       [](Value* e, int v) { SignAsIs(e, v, kSignerA); },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch,
       {"content hash does not match"}, {"ed25519:a1"}},
      {"hashes without sha256",
       [](Value* e, int v) {
         e->Set("hashes", Parse(R"({"sha512":"x"})"));
         SignAsIs(e, v, kSignerA);
       },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch, {},
       {"ed25519:a1"}},
      {"hashes.sha256 garbage",
       [](Value* e, int v) {
         e->Set("hashes", Parse(R"({"sha256":"not*base64*at*all"})"));
         SignAsIs(e, v, kSignerA);
       },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch, {},
       {"ed25519:a1"}},
      {"hashes.sha256 of something else",
       [](Value* e, int v) {
         e->Set("hashes",
                Parse(absl::StrCat(R"({"sha256":")",
                                   EncodeBase64Unpadded(AsStringView(Sha256("x"))),
                                   "\"}")));
         SignAsIs(e, v, kSignerA);
       },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch, {},
       {"ed25519:a1"}},
      {"hashes.sha256 not a string",
       [](Value* e, int v) {
         e->Set("hashes", Parse(R"({"sha256":7})"));
         SignAsIs(e, v, kSignerA);
       },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch, {},
       {"ed25519:a1"}},
      {"hashes not an object",
       [](Value* e, int v) {
         e->Set("hashes", Value::String("x"));
         SignAsIs(e, v, kSignerA);
       },
       Outcome::kValidButRedacted, Reason::kContentHashMismatch, {},
       {"ed25519:a1"}},
      {"hashes.sha256 padded",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         Value* sha = Path(e, {"hashes", "sha256"});
         *sha = Value::String(absl::StrCat(sha->string_value(), "="));
         e->Erase("signatures");
         SignAsIs(e, v, kSignerA);
       },
       Outcome::kValid, Reason::kOk, {}, {"ed25519:a1"}},
      {"hashes changed after signing",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         *Path(e, {"hashes", "sha256"}) = Value::String("AAAA");
       },
       Outcome::kInvalid, Reason::kBadSignature,
       {"signature of a.example with ed25519:a1 does not verify"}},
      {"signed field changed after signing",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         e->Set("depth", Value::Integer(6));
       },
       Outcome::kInvalid, Reason::kBadSignature,
       {"signature of a.example with ed25519:a1 does not verify"}},
      {"signature of other bytes",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         *Path(e, {"signatures", "a.example", "ed25519:a1"}) =
             Value::String(SignatureOfOtherBytes(KeyA()));
       },
       Outcome::kInvalid, Reason::kBadSignature,
       {"signature of a.example with ed25519:a1 does not verify"}},
      {"signed by another key under the known key id",
       [](Value* e, int v) { Resign(e, v, {"a.example", "ed25519:a1", &KeyB()}); },
       Outcome::kInvalid, Reason::kBadSignature,
       {"signature of a.example with ed25519:a1 does not verify"}},
      {"two known keys, both good",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         Resign(e, v, {"a.example", "ed25519:a2", &KeyC()});
       },
       Outcome::kValid, Reason::kOk, {}, {"ed25519:a1", "ed25519:a2"}},
      // Every signature by a known key must verify, not just one.
      {"two known keys, one bad",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         Resign(e, v, {"a.example", "ed25519:a2", &KeyB()});
       },
       Outcome::kInvalid, Reason::kBadSignature,
       {"signature of a.example with ed25519:a2 does not verify"}},
      {"no signature from the sender's server",
       [](Value* e, int v) { Sign(e, v, {kSignerB, kSignerC}); },
       Outcome::kInvalid, Reason::kMissingSignature,
       {"no signature from a.example"}},
      {"no signatures at all",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         e->Erase("signatures");
       },
       Outcome::kInvalid, Reason::kMissingSignature,
       {"no signature from a.example"}},
      {"empty signature object for the sender's server",
       [](Value* e, int v) {
         Resign(e, v, kSignerB);
         Path(e, {"signatures"})->Set("a.example", Value::Object());
       },
       Outcome::kInvalid, Reason::kMissingSignature,
       {"no signature from a.example"}},
      {"only a signature of another algorithm",
       [](Value* e, int v) {
         Resign(e, v, kSignerB);
         Path(e, {"signatures"})
             ->Set("a.example", Parse(R"({"curve25519:a1":"AAAA"})"));
       },
       Outcome::kInvalid, Reason::kMissingSignature,
       {"no ed25519 signature from a.example"}},
      {"another algorithm next to a good signature",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         Path(e, {"signatures", "a.example"})
             ->Set("curve25519:a1", Value::Integer(3));
       },
       Outcome::kValid, Reason::kOk, {}, {"ed25519:a1"}},
      {"signed with an unknown key",
       [](Value* e, int v) { Resign(e, v, {"a.example", "ed25519:zz", &KeyA()}); },
       Outcome::kInvalid, Reason::kUnknownKey,
       {"a.example signed with unknown key(s) ed25519:zz"}},
      {"unknown key next to a good one",
       [](Value* e, int v) {
         Resign(e, v, {"a.example", "ed25519:zz", &KeyB()});
         Resign(e, v, kSignerA);
       },
       Outcome::kValid, Reason::kOk, {}, {"ed25519:a1"}},
      {"signature not base64",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         *Path(e, {"signatures", "a.example", "ed25519:a1"}) =
             Value::String("not base64!");
       },
       Outcome::kInvalid, Reason::kMalformedSignature,
       {"signature of a.example with ed25519:a1"}},
      {"signature of 63 bytes",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         *Path(e, {"signatures", "a.example", "ed25519:a1"}) =
             Value::String(EncodeBase64Unpadded(std::string(63, 's')));
       },
       Outcome::kInvalid, Reason::kMalformedSignature,
       {"signature of a.example with ed25519:a1 is 63 bytes, not 64"}},
      {"signature of 65 bytes",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         *Path(e, {"signatures", "a.example", "ed25519:a1"}) =
             Value::String(EncodeBase64Unpadded(std::string(65, 's')));
       },
       Outcome::kInvalid, Reason::kMalformedSignature,
       {"signature of a.example with ed25519:a1 is 65 bytes, not 64"}},
      {"signature not a string",
       [](Value* e, int v) {
         Resign(e, v, kSignerA);
         *Path(e, {"signatures", "a.example", "ed25519:a1"}) =
             Value::Integer(64);
       },
       Outcome::kInvalid, Reason::kMalformedSignature,
       {"signature of a.example with ed25519:a1 is not a string"}},
      {"signatures of the sender's server not an object",
       [](Value* e, int v) {
         Resign(e, v, kSignerB);
         Path(e, {"signatures"})->Set("a.example", Value::String("sig"));
       },
       Outcome::kInvalid, Reason::kMissingSignature,
       {"no signature from a.example"}},
  };
}

TEST(EventVerifierTest, Verdicts) {
  for (const VerdictCase& c : VerdictCases()) {
    for (int version = 1; version <= 12; ++version) {
      SCOPED_TRACE(absl::StrCat(c.name, ", room version ", version));
      Value event = MessageEvent(version);
      c.make(&event, version);
      EventVerdict v = Verify(event, version);
      EXPECT_EQ(v.outcome, c.outcome) << v.message;
      EXPECT_EQ(v.reason, c.reason) << v.message;
      for (const std::string& part : c.message_has) {
        EXPECT_THAT(v.message, HasSubstr(part));
      }
      if (c.outcome != Outcome::kInvalid) {
        ASSERT_EQ(v.checked.size(), 1u);
        EXPECT_EQ(v.checked[0].server, "a.example");
        EXPECT_EQ(v.checked[0].key_ids, c.checked_a);
      } else {
        EXPECT_THAT(v.checked, IsEmpty());
      }
    }
  }
}

TEST(EventVerifierTest, ValidButRedactedHasTheRedactedEvent) {
  Value event = MessageEvent(10);
  Sign(&event, 10, {kSignerA});
  *Path(&event, {"content", "body"}) = Value::String("changed");
  absl::StatusOr<PreparedEvent> p = Prepare(event, 10);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->content_hash_matches);
  absl::StatusOr<Value> redacted_or = RedactedEvent(*p);
  ASSERT_TRUE(redacted_or.ok()) << redacted_or.status();
  const Value& redacted = *redacted_or;
  EXPECT_EQ(ToJson(*redacted.Find("content")), "{}");
  EXPECT_EQ(redacted.Find("unsigned"), nullptr);
  EXPECT_NE(redacted.Find("signatures"), nullptr);
  EXPECT_NE(redacted.Find("hashes"), nullptr);
  EventVerdict v = VerifyPreparedEvent(*p, KeyTable::Default().Lookup());
  EXPECT_EQ(v.outcome, Outcome::kValidButRedacted);
  EXPECT_EQ(v.message,
            absl::StrCat("content hash does not match (computed ",
                         p->content_hash, "); use the redacted event"));
}

TEST(EventVerifierTest, NoKeysForTheServer) {
  for (int version : {1, 4, 12}) {
    SCOPED_TRACE(version);
    Value event = MessageEvent(version);
    Sign(&event, version, {kSignerA});
    KeyTable keys;
    keys.Set("b.example", {Current("ed25519:a1", KeyA())});
    EventVerdict v = Verify(event, version, keys);
    EXPECT_EQ(v.outcome, Outcome::kInvalid);
    EXPECT_EQ(v.reason, Reason::kUnknownKey);
    EXPECT_EQ(v.message, "a.example signed with unknown key(s) ed25519:a1");
  }
}

// Room versions 5+ require the key to be valid when the event was sent
// (valid_until_ts capped at now + 7 days); old keys only sign events sent
// before they expired, in every version.
TEST(EventVerifierTest, KeyValidity) {
  struct Case {
    const char* name;
    VerifyKey key;
    bool valid_v1_to_v4;
    bool valid_from_v5;
  };
  VerifyKey old_after = Current("ed25519:a1", KeyA());
  old_after.valid_until_ts.reset();
  old_after.expired_ts = kEventTs + 1;
  VerifyKey old_at = old_after;
  old_at.expired_ts = kEventTs;
  VerifyKey old_before = old_after;
  old_before.expired_ts = kEventTs - 1;
  const Case cases[] = {
      {"valid until after the event", Current("ed25519:a1", KeyA(), kEventTs),
       true, true},
      {"lapsed before the event", Current("ed25519:a1", KeyA(), kEventTs - 1),
       true, false},
      {"old key, expired after the event", old_after, true, true},
      {"old key, expired at the event", old_at, true, true},
      {"old key, expired before the event", old_before, false, false},
  };
  for (const Case& c : cases) {
    for (int version = 1; version <= 12; ++version) {
      SCOPED_TRACE(absl::StrCat(c.name, ", room version ", version));
      Value event = MessageEvent(version);
      Sign(&event, version, {kSignerA});
      KeyTable keys;
      keys.Set("a.example", {c.key});
      EventVerdict v = Verify(event, version, keys);
      const bool valid = version < 5 ? c.valid_v1_to_v4 : c.valid_from_v5;
      if (valid) {
        EXPECT_EQ(v.outcome, Outcome::kValid) << v.message;
      } else {
        EXPECT_EQ(v.outcome, Outcome::kInvalid);
        EXPECT_EQ(v.reason, Reason::kKeyNotValid);
        EXPECT_THAT(v.message, HasSubstr("a.example: key ed25519:a1"));
      }
    }
  }
}

TEST(EventVerifierTest, KeyValidityCapCountsFromTheLastConfirmingFetch) {
  // The key claims a year, but is trusted only up to 7 days after the last
  // response that listed it.
  Value event = MessageEvent(9);
  event.Set("origin_server_ts", Value::Integer(kNow + 7 * kDay));
  Sign(&event, 9, {kSignerA});
  VerifyKey key = Current("ed25519:a1", KeyA(), kNow + 365 * kDay);
  key.confirmed_ts = kNow;
  KeyTable keys;
  keys.Set("a.example", {key});
  EXPECT_EQ(Verify(event, 9, keys).outcome, Outcome::kValid);
  key.confirmed_ts = kNow - 1;
  keys.Set("a.example", {key});
  EventVerdict v = Verify(event, 9, keys);
  EXPECT_EQ(v.outcome, Outcome::kInvalid);
  EXPECT_EQ(v.reason, Reason::kKeyNotValid);
  EXPECT_THAT(v.message, HasSubstr("7 days after the last response listing it"));
  // Room version 4 ignores valid_until_ts altogether.
  Value v4 = MessageEvent(4);
  v4.Set("origin_server_ts", Value::Integer(kNow + 7 * kDay));
  Sign(&v4, 4, {kSignerA});
  EXPECT_EQ(Verify(v4, 4, keys).outcome, Outcome::kValid);
}

// --- Who must sign ------------------------------------------------------------

// Room versions 1 and 2 also need the server of the event id.
TEST(EventVerifierTest, EventIdServerMustSignInV1AndV2) {
  for (int version = 1; version <= 12; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    const bool explicit_id = version <= 2;
    Value only_sender = MessageEvent(version);
    only_sender.Set("event_id", Value::String("$e1:b.example"));
    Value both = only_sender;
    Sign(&only_sender, version, {kSignerA});
    Sign(&both, version, {kSignerA, kSignerB});

    EXPECT_EQ(RequiredServers(only_sender, version),
              (explicit_id
                   ? std::vector<std::string>{"a.example", "b.example"}
                   : std::vector<std::string>{"a.example"}));
    EventVerdict v = Verify(only_sender, version);
    if (explicit_id) {
      EXPECT_EQ(v.outcome, Outcome::kInvalid);
      EXPECT_EQ(v.reason, Reason::kMissingSignature);
      EXPECT_EQ(v.message, "no signature from b.example");
    } else {
      EXPECT_EQ(v.outcome, Outcome::kValid) << v.message;
    }

    EventVerdict vb = Verify(both, version);
    EXPECT_EQ(vb.outcome, Outcome::kValid) << vb.message;
    ASSERT_EQ(vb.checked.size(), explicit_id ? 2u : 1u);
    EXPECT_EQ(vb.checked[0].server, "a.example");
    if (explicit_id) {
      EXPECT_EQ(vb.checked[1].server, "b.example");
    }
  }
  // The same server once, when the event id names the sender's server.
  Value same = MessageEvent(1);
  EXPECT_EQ(RequiredServers(same, 1), std::vector<std::string>{"a.example"});
}

Value MemberEvent(int version, absl::string_view state_key,
                  absl::string_view content_json, absl::string_view event_id) {
  Value e = Parse(absl::StrCat(
      R"({"auth_events":[],"depth":9,"origin_server_ts":1690000000000,)"
      R"("prev_events":[],"room_id":"!r:a.example","sender":"@alice:a.example",)"
      R"("type":"m.room.member","state_key":")",
      state_key, R"(","content":)", content_json, "}"));
  if (version <= 2) e.Set("event_id", Value::String(std::string(event_id)));
  return e;
}

// From room version 8 a join authorised by another server's user needs that
// server's signature too.
TEST(EventVerifierTest, RestrictedJoinNeedsTheAuthorisingServer) {
  constexpr char kJoin[] =
      R"({"membership":"join","join_authorised_via_users_server":"@admin:c.example"})";
  for (int version = 1; version <= 12; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    const bool restricted = version >= 8;
    Value sender_only = MemberEvent(version, "@alice:a.example", kJoin, "$j:a.example");
    Value both = sender_only;
    Sign(&sender_only, version, {kSignerA});
    Sign(&both, version, {kSignerA, kSignerC});

    EXPECT_EQ(RequiredServers(sender_only, version),
              (restricted
                   ? std::vector<std::string>{"a.example", "c.example"}
                   : std::vector<std::string>{"a.example"}));
    EventVerdict v = Verify(sender_only, version);
    if (restricted) {
      EXPECT_EQ(v.outcome, Outcome::kInvalid);
      EXPECT_EQ(v.reason, Reason::kMissingSignature);
      EXPECT_EQ(v.message, "no signature from c.example");
    } else {
      EXPECT_EQ(v.outcome, Outcome::kValid) << v.message;
    }
    EventVerdict vb = Verify(both, version);
    EXPECT_EQ(vb.outcome, Outcome::kValid) << vb.message;
    ASSERT_EQ(vb.checked.size(), restricted ? 2u : 1u);
    if (restricted) {
      EXPECT_EQ(vb.checked[1].server, "c.example");
      EXPECT_THAT(vb.checked[1].key_ids, ElementsAre("ed25519:c1"));
    }

    // Only a join asks for it.
    Value leave = MemberEvent(
        version, "@alice:a.example",
        R"({"membership":"leave","join_authorised_via_users_server":"@admin:c.example"})",
        "$l:a.example");
    EXPECT_EQ(RequiredServers(leave, version),
              std::vector<std::string>{"a.example"});

    // Authorised by a user of the sender's own server: one server.
    Value own = MemberEvent(
        version, "@alice:a.example",
        R"({"membership":"join","join_authorised_via_users_server":"@admin:a.example"})",
        "$o:a.example");
    EXPECT_EQ(RequiredServers(own, version),
              std::vector<std::string>{"a.example"});
  }
}

TEST(EventVerifierTest, RestrictedJoinWithUnusableAuthorisingUser) {
  for (const char* via : {"7", "null", R"("admin")", R"("@admin:bad server")",
                          R"(["@admin:c.example"])"}) {
    for (int version = 1; version <= 12; ++version) {
      SCOPED_TRACE(absl::StrCat(via, ", room version ", version));
      Value event = MemberEvent(
          version, "@alice:a.example",
          absl::StrCat(R"({"membership":"join","join_authorised_via_users_server":)",
                       via, "}"),
          "$j:a.example");
      absl::StatusOr<PreparedEvent> p = Prepare(event, version);
      if (version < 8) {
        EXPECT_TRUE(p.ok()) << p.status();
      } else {
        ASSERT_FALSE(p.ok());
        EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_THAT(p.status().message(),
                    HasSubstr("event: content.join_authorised_via_users_server"));
      }
    }
  }
}

// A third-party invite may be sent by another server than the sender's: in
// v1/v2 the event id's server signs it. From v3 the spec names no other
// server, so the sender's is still required (see event_verifier.h).
TEST(EventVerifierTest, ThirdPartyInviteDoesNotNeedTheSendersServer) {
  constexpr char kInvite[] =
      R"({"membership":"invite","third_party_invite":{"display_name":"b...",)"
      R"("signed":{"mxid":"@bob:b.example","token":"t","signatures":{}}}})";
  for (int version = 1; version <= 12; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    Value by_b = MemberEvent(version, "@bob:b.example", kInvite, "$i:b.example");
    Value by_a = by_b;
    Sign(&by_b, version, {kSignerB});
    Sign(&by_a, version, {kSignerA});
    if (version <= 2) {
      EXPECT_EQ(RequiredServers(by_b, version),
                std::vector<std::string>{"b.example"});
      EventVerdict v = Verify(by_b, version);
      EXPECT_EQ(v.outcome, Outcome::kValid) << v.message;
      ASSERT_EQ(v.checked.size(), 1u);
      EXPECT_EQ(v.checked[0].server, "b.example");
      EventVerdict va = Verify(by_a, version);
      EXPECT_EQ(va.reason, Reason::kMissingSignature);
      EXPECT_EQ(va.message, "no signature from b.example");
    } else {
      EXPECT_EQ(RequiredServers(by_b, version),
                std::vector<std::string>{"a.example"});
      EXPECT_EQ(Verify(by_a, version).outcome, Outcome::kValid);
      EventVerdict v = Verify(by_b, version);
      EXPECT_EQ(v.reason, Reason::kMissingSignature);
      EXPECT_EQ(v.message, "no signature from a.example");
    }
  }
  // Without third_party_invite, or not an invite, the sender's server signs.
  for (const char* content :
       {R"({"membership":"invite"})",
        R"({"membership":"join","third_party_invite":{"signed":{}}})"}) {
    SCOPED_TRACE(content);
    Value event = MemberEvent(1, "@bob:b.example", content, "$i:b.example");
    EXPECT_EQ(RequiredServers(event, 1),
              (std::vector<std::string>{"a.example", "b.example"}));
  }
  // A member event only: the same content on another type changes nothing.
  Value other = MemberEvent(1, "@bob:b.example", kInvite, "$i:b.example");
  other.Set("type", Value::String("m.room.message"));
  EXPECT_EQ(RequiredServers(other, 1),
            (std::vector<std::string>{"a.example", "b.example"}));
}

TEST(EventVerifierTest, NothingRequiredIsNotValid) {
  Value event = MessageEvent(10);
  Sign(&event, 10, {kSignerA});
  absl::StatusOr<PreparedEvent> p = Prepare(event, 10);
  ASSERT_TRUE(p.ok()) << p.status();
  p->required_servers.clear();
  EventVerdict v = VerifyPreparedEvent(*p, KeyTable::Default().Lookup());
  EXPECT_EQ(v.outcome, Outcome::kInvalid);
  EXPECT_EQ(v.reason, Reason::kMissingSignature);
}

// --- Event ids ------------------------------------------------------------------

TEST(EventVerifierTest, EventIds) {
  // Reference hash of this event, and its content hash, computed
  // independently: standard base64 has both '+' and '/' here.
  constexpr char kEvent[] =
      R"({"auth_events":[],"content":{"body":"event id test"},"depth":7,)"
      R"("origin_server_ts":1600000000000,"prev_events":[],)"
      R"("room_id":"!r:a.example","sender":"@alice:a.example",)"
      R"("type":"m.room.message"})";
  constexpr char kContentHash[] = "kmWxKBslWOnSBSw4SQF5qCmhGtx1xWFND64T48Gfs94";
  constexpr char kV3Id[] = "$zNVnzXmMMaMf+c5cQ/fStgAwIwE2Uoy4n4ljF2jSGpQ";
  constexpr char kV4Id[] = "$zNVnzXmMMaMf-c5cQ_fStgAwIwE2Uoy4n4ljF2jSGpQ";
  for (int version = 1; version <= 12; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    Value event = Parse(kEvent);
    if (version <= 2) event.Set("event_id", Value::String("$given:a.example"));
    Sign(&event, version, {kSignerA});
    absl::StatusOr<PreparedEvent> p = Prepare(event, version);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(p->content_hash_matches);
    if (version >= 3) {
      EXPECT_EQ(p->content_hash, kContentHash);  // v1/v2 also hash event_id
    }
    if (version <= 2) {
      EXPECT_EQ(p->event_id, "$given:a.example");
    } else if (version == 3) {
      EXPECT_EQ(p->event_id, kV3Id);
    } else {
      EXPECT_EQ(p->event_id, kV4Id);
    }
    if (version >= 3) {
      EXPECT_EQ(p->signed_bytes,
                absl::StrCat(
                    R"({"auth_events":[],"content":{},"depth":7,)"
                    R"("hashes":{"sha256":")",
                    kContentHash,
                    R"("},"origin_server_ts":1600000000000,"prev_events":[],)"
                    R"("room_id":"!r:a.example","sender":"@alice:a.example",)"
                    R"("type":"m.room.message"})"));
      // The id does not depend on signatures or unsigned data.
      event.Erase("signatures");
      event.Set("unsigned", Parse(R"({"age":1})"));
      absl::StatusOr<PreparedEvent> again = Prepare(event, version);
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_EQ(again->event_id, p->event_id);
    }
    EXPECT_EQ(Verify(event, version).outcome,
              version <= 2 ? Outcome::kValid : Outcome::kInvalid);
  }
}

// --- Numbers ----------------------------------------------------------------------

TEST(EventVerifierTest, NumbersPerRoomVersion) {
  struct Case {
    const char* where;  // a top-level member holding {"n": <number>}
    const char* number;
    const char* error_path;
  };
  const Case cases[] = {
      {"content", "1.5", "$.content.n"},
      {"content", "1e3", "$.content.n"},
      {"content", "-0.0", "$.content.n"},
      {"content", "9007199254740992", "$.content.n"},
      {"content", "-9007199254740992", "$.content.n"},
      {"content", "123456789012345678901234567890", "$.content.n"},
      // The whole event, not only what is hashed or signed.
      {"unsigned", "1.5", "$.unsigned.n"},
      {"unsigned", "9007199254740992", "$.unsigned.n"},
      {"extra", "2.5", "$.extra.n"},
  };
  for (const Case& c : cases) {
    for (int version = 1; version <= 12; ++version) {
      SCOPED_TRACE(absl::StrCat(c.where, " ", c.number, ", room version ",
                                version));
      Value event = MessageEvent(version);
      event.Set(c.where, Parse(absl::StrCat(R"({"n":)", c.number, "}")));
      if (version <= 5) {
        // Encoded as their signers (Python) did: hashed, signed, verified.
        Sign(&event, version, {kSignerA});
        EventVerdict v = Verify(event, version);
        EXPECT_EQ(v.outcome, Outcome::kValid) << v.message;
      } else {
        absl::StatusOr<PreparedEvent> p = Prepare(event, version);
        ASSERT_FALSE(p.ok());
        EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_THAT(p.status().message(),
                    HasSubstr(absl::StrCat("event: number at ", c.error_path)));
      }
    }
  }
}

TEST(EventVerifierTest, SafeIntegersEverywhere) {
  for (int version = 1; version <= 12; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    Value event = MessageEvent(version);
    event.Set("content", Parse(R"({"max":9007199254740991,)"
                               R"("min":-9007199254740991,"zero":-0})"));
    Sign(&event, version, {kSignerA});
    EXPECT_EQ(Verify(event, version).outcome, Outcome::kValid);
  }
}

// --- Unusable input ---------------------------------------------------------------

TEST(EventVerifierTest, PrepareEventErrorsNameTheField) {
  constexpr char kBase[] =
      R"("type":"m.room.message","room_id":"!r:a.example","content":{},)"
      R"("event_id":"$e:a.example")";
  struct Case {
    int version;
    std::string json;
    const char* error;  // the whole message, or a prefix ending in "..."
  };
  const Case cases[] = {
      {1, "[]", "event: not a JSON object"},
      {12, "\"event\"", "event: not a JSON object"},
      {12, "null", "event: not a JSON object"},
      {12, "{", "event: ..."},
      {12, R"({"a":1,"a":2})", "event: ..."},
      {12, absl::StrCat("{", kBase, R"(,"origin_server_ts":1})"),
       "event: sender is missing or not a string"},
      {12, absl::StrCat("{", kBase, R"(,"sender":7,"origin_server_ts":1})"),
       "event: sender is missing or not a string"},
      {12, absl::StrCat("{", kBase, R"(,"sender":"alice","origin_server_ts":1})"),
       "event: sender: ..."},
      {12,
       absl::StrCat("{", kBase,
                    R"(,"sender":"@alice:bad server","origin_server_ts":1})"),
       "event: sender: ..."},
      {12, absl::StrCat("{", kBase, R"(,"sender":"@a:a.example"})"),
       "event: origin_server_ts is missing or not an integer"},
      {12,
       absl::StrCat("{", kBase, R"(,"sender":"@a:a.example","origin_server_ts":"1"})"),
       "event: origin_server_ts is missing or not an integer"},
      {1,
       absl::StrCat("{", kBase, R"(,"sender":"@a:a.example","origin_server_ts":1.5})"),
       "event: origin_server_ts is missing or not an integer"},
      {1,
       absl::StrCat("{", kBase,
                    R"(,"sender":"@a:a.example","origin_server_ts":1e3})"),
       "event: origin_server_ts is missing or not an integer"},
      {1,
       absl::StrCat("{", kBase,
                    R"(,"sender":"@a:a.example","origin_server_ts":null})"),
       "event: origin_server_ts is missing or not an integer"},
      {1,
       absl::StrCat(
           "{", kBase,
           R"(,"sender":"@a:a.example","origin_server_ts":1,"signatures":[]})"),
       "event: signatures is not an object"},
      {1,
       R"({"type":"m.room.message","sender":"@a:a.example","origin_server_ts":1})",
       "event: event_id is missing or not a string (required in room version 1)"},
      {2,
       R"({"type":"X","sender":"@a:a.example","origin_server_ts":1,"event_id":5})",
       "event: event_id is missing or not a string (required in room version 2)"},
      {1,
       R"({"type":"X","sender":"@a:a.example","origin_server_ts":1,"event_id":"$x"})",
       "event: event_id: ..."},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("room version ", c.version, ": ", c.json));
    absl::StatusOr<PreparedEvent> p = PrepareEvent(c.json, Room(c.version));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    absl::string_view want = c.error;
    if (absl::EndsWith(want, "...")) {
      EXPECT_THAT(std::string(p.status().message()),
                  ::testing::StartsWith(
                      std::string(want.substr(0, want.size() - 3))));
    } else {
      EXPECT_EQ(p.status().message(), want);
    }
  }
}

// The spec limits a PDU to 65536 bytes of canonical JSON, signatures and all.
TEST(EventVerifierTest, SizeLimitAppliesToCanonicalJson) {
  for (int version : {1, 6, 12}) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    Value event = MessageEvent(version);
    Sign(&event, version, {kSignerA});
    const size_t base = ToJson(event).size();
    // Grows the body (and with it the content hash's... nothing: the hash has
    // a fixed length) to reach exactly `size` bytes.
    auto sized = [&](size_t size) {
      Value e = MessageEvent(version);
      std::string body = "hello";
      body.append(size - base, 'x');
      *Path(&e, {"content", "body"}) = Value::String(body);
      Sign(&e, version, {kSignerA});
      EXPECT_EQ(ToJson(e).size(), size);
      return e;
    };
    Value at_limit = sized(65536);
    EXPECT_EQ(Verify(at_limit, version).outcome, Outcome::kValid);
    // Pretty-printed input larger than the limit is fine when its canonical
    // form is not.
    std::string pretty =
        absl::StrReplaceAll(ToJson(at_limit), {{",\"", ",\n    \""}});
    ASSERT_GT(pretty.size(), 65536u);
    EXPECT_TRUE(PrepareEvent(pretty, Room(version)).ok());

    Value over = sized(65537);
    for (const absl::StatusOr<PreparedEvent>& p :
         {PrepareEvent(ToJson(over), Room(version)),
          PrepareEvent(over, Room(version))}) {
      ASSERT_FALSE(p.ok());
      EXPECT_EQ(p.status().message(),
                "event: 65537 bytes as canonical JSON; the limit is 65536");
    }
    // `unsigned` counts too.
    Value with_unsigned = at_limit;
    Path(&with_unsigned, {"unsigned"})->Set("x", Value::Integer(1));
    EXPECT_FALSE(PrepareEvent(with_unsigned, Room(version)).ok());
  }
}

TEST(EventVerifierTest, HugeInputIsRefusedBeforeParsing) {
  std::string huge = absl::StrCat("{", std::string(2 << 20, ' '), "}");
  absl::StatusOr<PreparedEvent> p = PrepareEvent(huge, Room(10));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("bytes; the limit is"));
}

// --- Signing ------------------------------------------------------------------------

TEST(EventVerifierTest, HashAndSignEvent) {
  for (int version = 1; version <= 12; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    Value event = MessageEvent(version);
    event.Set("hashes", Parse(R"({"sha256":"old","other":"x"})"));
    Sign(&event, version, {kSignerA, kSignerB});
    // Both signatures kept; old hashes replaced; unsigned untouched.
    EXPECT_NE(Path(&event, {"signatures", "a.example", "ed25519:a1"}), nullptr);
    EXPECT_NE(Path(&event, {"signatures", "b.example", "ed25519:b1"}), nullptr);
    EXPECT_EQ(Path(&event, {"hashes"})->members().size(), 1u);
    EXPECT_EQ(ToJson(*Path(&event, {"unsigned"})), R"({"age":10})");
    EXPECT_EQ(Verify(event, version).outcome, Outcome::kValid);
  }
  Value not_object = Value::Array();
  EXPECT_FALSE(
      HashAndSignEvent(&not_object, Room(1), "a.example", "ed25519:a1", KeyA())
          .ok());
  Value with_float = MessageEvent(6);
  with_float.Set("content", Parse(R"({"n":0.5})"));
  absl::Status s =
      HashAndSignEvent(&with_float, Room(6), "a.example", "ed25519:a1", KeyA());
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("$.content.n"));
}

TEST(EventVerifierTest, Names) {
  EXPECT_EQ(OutcomeName(Outcome::kValid), "valid");
  EXPECT_EQ(OutcomeName(Outcome::kValidButRedacted), "valid_but_redacted");
  EXPECT_EQ(OutcomeName(Outcome::kInvalid), "invalid");
  EXPECT_EQ(ReasonName(Reason::kContentHashMismatch), "content_hash_mismatch");
}

}  // namespace
}  // namespace keyverifier::core
