#include "service/core/redaction.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"

namespace keyverifier::core {
namespace {

using ::testing::HasSubstr;

constexpr int kFirstVersion = 1;
constexpr int kLastVersion = 12;

Value Parse(absl::string_view json) {
  absl::StatusOr<Value> v = ParseJson(json);
  EXPECT_TRUE(v.ok()) << json << ": " << v.status();
  return v.ok() ? *std::move(v) : Value();
}

RedactionRules RulesOf(int version) {
  absl::StatusOr<const RoomVersion*> room =
      LookupRoomVersion(absl::StrCat(version));
  EXPECT_TRUE(room.ok()) << room.status();
  return room.ok() ? (*room)->redaction : RedactionRules::kV1;
}

// Redacts `event_json` under room version `version`, canonical JSON out.
std::string Redacted(int version, absl::string_view event_json) {
  Value event = Parse(event_json);
  RedactEvent(RulesOf(version), &event);
  return ToJson(event);
}

std::set<std::string> KeysOf(const Value& object) {
  std::set<std::string> keys;
  for (const auto& member : object.members()) keys.insert(member.first);
  return keys;
}

bool InRange(int version, int from, int until) {
  return from <= version && version <= until;
}

// --- The room version table -------------------------------------------------

TEST(RoomVersionTest, EveryVersionHasItsProperties) {
  struct Case {
    const char* id;
    EventIdFormat event_id_format;
    RedactionRules redaction;
    NumberPolicy number_policy;
    bool enforce_key_validity;
    bool restricted_join_signatures;
  };
  using F = EventIdFormat;
  using R = RedactionRules;
  constexpr NumberPolicy kLegacy = NumberPolicy::kLegacy;
  constexpr NumberPolicy kStrict = NumberPolicy::kStrict;
  const Case cases[] = {
      {"1", F::kExplicit, R::kV1, kLegacy, false, false},
      {"2", F::kExplicit, R::kV1, kLegacy, false, false},
      {"3", F::kReferenceHash, R::kV1, kLegacy, false, false},
      {"4", F::kReferenceHashUrl, R::kV1, kLegacy, false, false},
      {"5", F::kReferenceHashUrl, R::kV1, kLegacy, true, false},
      {"6", F::kReferenceHashUrl, R::kV6, kStrict, true, false},
      {"7", F::kReferenceHashUrl, R::kV6, kStrict, true, false},
      {"8", F::kReferenceHashUrl, R::kV8, kStrict, true, true},
      {"9", F::kReferenceHashUrl, R::kV9, kStrict, true, true},
      {"10", F::kReferenceHashUrl, R::kV9, kStrict, true, true},
      {"11", F::kReferenceHashUrl, R::kV11, kStrict, true, true},
      {"12", F::kReferenceHashUrl, R::kV11, kStrict, true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.id);
    absl::StatusOr<const RoomVersion*> room = LookupRoomVersion(c.id);
    ASSERT_TRUE(room.ok()) << room.status();
    EXPECT_EQ((*room)->id, c.id);
    EXPECT_EQ((*room)->event_id_format, c.event_id_format);
    EXPECT_EQ((*room)->redaction, c.redaction);
    EXPECT_EQ((*room)->number_policy, c.number_policy);
    EXPECT_EQ((*room)->enforce_key_validity, c.enforce_key_validity);
    EXPECT_EQ((*room)->restricted_join_signatures, c.restricted_join_signatures);
  }
}

TEST(RoomVersionTest, UnknownVersionsAreRefused) {
  for (const char* id : {"", "0", "13", "1.0", " 1", "01", "v1",
                         "org.matrix.msc2176"}) {
    SCOPED_TRACE(id);
    absl::StatusOr<const RoomVersion*> room = LookupRoomVersion(id);
    ASSERT_FALSE(room.ok());
    EXPECT_EQ(room.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(room.status().message(),
                HasSubstr(absl::StrCat("\"", id, "\"")));
  }
}

// --- Top-level keys ---------------------------------------------------------

TEST(RedactionTest, TopLevelKeysPerVersion) {
  struct Key {
    const char* name;
    int from;   // first version keeping it (0: never kept)
    int until;  // last version keeping it
  };
  const Key keys[] = {
      {"auth_events", 1, 12},     {"content", 1, 12},
      {"depth", 1, 12},           {"event_id", 1, 12},
      {"hashes", 1, 12},          {"origin_server_ts", 1, 12},
      {"prev_events", 1, 12},     {"room_id", 1, 12},
      {"sender", 1, 12},          {"signatures", 1, 12},
      {"state_key", 1, 12},       {"type", 1, 12},
      // Dropped from the list by room version 11.
      {"membership", 1, 10},      {"origin", 1, 10},
      {"prev_state", 1, 10},
      // Never on the list.
      {"unsigned", 0, 0},         {"redacts", 0, 0},
      {"age", 0, 0},              {"age_ts", 0, 0},
      {"user_id", 0, 0},          {"prev_content", 0, 0},
      {"outlier", 0, 0},          {"destinations", 0, 0},
      {"Event_id", 0, 0},
  };
  // Every key present, each with a value that redaction must keep untouched.
  Value event = Value::Object();
  for (const Key& k : keys) {
    event.Set(k.name, Value::Array({Value::String(k.name), Value::Integer(1)}));
  }
  event.Set("type", Value::String("m.room.message"));
  event.Set("content", Parse(R"({"body":"hi"})"));

  for (int version = kFirstVersion; version <= kLastVersion; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    Value redacted = event;
    RedactEvent(RulesOf(version), &redacted);
    std::set<std::string> want;
    for (const Key& k : keys) {
      if (InRange(version, k.from, k.until)) want.insert(k.name);
    }
    EXPECT_EQ(KeysOf(redacted), want);
    for (const std::string& key : want) {
      if (key == "type" || key == "content") continue;
      const Value* kept = redacted.Find(key);
      ASSERT_NE(kept, nullptr) << key;
      EXPECT_EQ(*kept, *event.Find(key)) << key;
    }
  }
}

// --- Content keys per event type -------------------------------------------

struct ContentRule {
  const char* type;
  const char* key;
  int from;   // first version keeping content[key] (0: never)
  int until;  // last version keeping it
};

// Which content keys of which type survive in which room versions.
const ContentRule kContentRules[] = {
    {"m.room.member", "membership", 1, 12},
    {"m.room.member", "join_authorised_via_users_server", 9, 12},
    {"m.room.member", "displayname", 0, 0},
    {"m.room.member", "avatar_url", 0, 0},
    {"m.room.member", "reason", 0, 0},
    {"m.room.member", "is_direct", 0, 0},
    // Until v10 only `creator`; from v11 the whole content.
    {"m.room.create", "creator", 1, 12},
    {"m.room.create", "room_version", 11, 12},
    {"m.room.create", "m.federate", 11, 12},
    {"m.room.create", "predecessor", 11, 12},
    {"m.room.create", "additional_creators", 11, 12},
    {"m.room.create", "anything_else", 11, 12},
    {"m.room.join_rules", "join_rule", 1, 12},
    {"m.room.join_rules", "allow", 8, 12},
    {"m.room.join_rules", "other", 0, 0},
    {"m.room.power_levels", "ban", 1, 12},
    {"m.room.power_levels", "events", 1, 12},
    {"m.room.power_levels", "events_default", 1, 12},
    {"m.room.power_levels", "kick", 1, 12},
    {"m.room.power_levels", "redact", 1, 12},
    {"m.room.power_levels", "state_default", 1, 12},
    {"m.room.power_levels", "users", 1, 12},
    {"m.room.power_levels", "users_default", 1, 12},
    {"m.room.power_levels", "invite", 11, 12},
    {"m.room.power_levels", "notifications", 0, 0},
    {"m.room.aliases", "aliases", 1, 5},
    {"m.room.aliases", "other", 0, 0},
    {"m.room.history_visibility", "history_visibility", 1, 12},
    {"m.room.history_visibility", "other", 0, 0},
    {"m.room.redaction", "redacts", 11, 12},
    {"m.room.redaction", "reason", 0, 0},
    // Types without rules lose everything, whatever the key is called.
    {"m.room.message", "body", 0, 0},
    {"m.room.message", "membership", 0, 0},
    {"m.room.name", "name", 0, 0},
    {"m.room.topic", "topic", 0, 0},
    {"m.room.third_party_invite", "public_key", 0, 0},
    {"m.room.canonical_alias", "alias", 0, 0},
    {"m.room.guest_access", "guest_access", 0, 0},
    {"org.example.custom", "creator", 0, 0},
    {"m.room.Member", "membership", 0, 0},  // types compare exactly
    {"", "membership", 0, 0},
};

TEST(RedactionTest, ContentKeysPerTypeAndVersion) {
  std::set<std::string> types;
  for (const ContentRule& r : kContentRules) types.insert(r.type);

  for (const std::string& type : types) {
    // One event of `type` whose content has every key listed for it, each
    // with a nested value that must be kept whole.
    Value content = Value::Object();
    for (const ContentRule& r : kContentRules) {
      if (r.type != type) continue;
      content.Set(r.key, Parse(absl::StrCat(R"({"of":")", r.key,
                                            R"(","list":[1,{"x":null}]})")));
    }
    Value event = Value::Object();
    event.Set("type", Value::String(type));
    event.Set("content", content);

    for (int version = kFirstVersion; version <= kLastVersion; ++version) {
      SCOPED_TRACE(absl::StrCat("type \"", type, "\", room version ", version));
      Value redacted = event;
      RedactEvent(RulesOf(version), &redacted);
      const Value* got = redacted.Find("content");
      ASSERT_NE(got, nullptr);
      ASSERT_TRUE(got->is_object());
      std::set<std::string> want;
      for (const ContentRule& r : kContentRules) {
        if (r.type == type && InRange(version, r.from, r.until)) {
          want.insert(r.key);
        }
      }
      EXPECT_EQ(KeysOf(*got), want);
      for (const std::string& key : want) {
        const Value* kept = got->Find(key);
        ASSERT_NE(kept, nullptr) << key;
        EXPECT_EQ(*kept, *content.Find(key)) << key;
      }
    }
  }
}

// Whole events, exactly, at the versions where the rules change.
TEST(RedactionTest, ExactResults) {
  struct Case {
    int version;
    const char* event;
    const char* redacted;
  };
  constexpr char kMember[] =
      R"({"type":"m.room.member","state_key":"@u:x","sender":"@u:x",)"
      R"("origin":"x","membership":"join","prev_state":[],)"
      R"("unsigned":{"age":5},"redacts":"$r",)"
      R"("content":{"membership":"join","displayname":"U",)"
      R"("join_authorised_via_users_server":"@admin:y",)"
      R"("third_party_invite":{"display_name":"u","signed":{"mxid":"@u:x",)"
      R"("token":"t","signatures":{"id":{"ed25519:0":"s"}}}}}})";
  constexpr char kRedaction[] =
      R"({"type":"m.room.redaction","redacts":"$top","sender":"@u:x",)"
      R"("content":{"redacts":"$inner","reason":"spam"}})";
  constexpr char kCreate[] =
      R"({"type":"m.room.create","state_key":"","sender":"@u:x",)"
      R"("content":{"creator":"@u:x","room_version":"9","m.federate":false}})";
  const Case cases[] = {
      {1, kMember,
       R"({"content":{"membership":"join"},"membership":"join","origin":"x",)"
       R"("prev_state":[],"sender":"@u:x","state_key":"@u:x",)"
       R"("type":"m.room.member"})"},
      {8, kMember,
       R"({"content":{"membership":"join"},"membership":"join","origin":"x",)"
       R"("prev_state":[],"sender":"@u:x","state_key":"@u:x",)"
       R"("type":"m.room.member"})"},
      {9, kMember,
       R"({"content":{"join_authorised_via_users_server":"@admin:y",)"
       R"("membership":"join"},"membership":"join","origin":"x",)"
       R"("prev_state":[],"sender":"@u:x","state_key":"@u:x",)"
       R"("type":"m.room.member"})"},
      {11, kMember,
       R"({"content":{"join_authorised_via_users_server":"@admin:y",)"
       R"("membership":"join","third_party_invite":{"signed":{"mxid":"@u:x",)"
       R"("signatures":{"id":{"ed25519:0":"s"}},"token":"t"}}},)"
       R"("sender":"@u:x","state_key":"@u:x","type":"m.room.member"})"},
      {10, kRedaction,
       R"({"content":{},"sender":"@u:x","type":"m.room.redaction"})"},
      {11, kRedaction,
       R"({"content":{"redacts":"$inner"},"sender":"@u:x",)"
       R"("type":"m.room.redaction"})"},
      {10, kCreate,
       R"({"content":{"creator":"@u:x"},"sender":"@u:x","state_key":"",)"
       R"("type":"m.room.create"})"},
      {11, kCreate,
       R"({"content":{"creator":"@u:x","m.federate":false,"room_version":"9"},)"
       R"("sender":"@u:x","state_key":"","type":"m.room.create"})"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("room version ", c.version, ": ", c.event));
    EXPECT_EQ(Redacted(c.version, c.event), c.redacted);
  }
}

// Room version 11 keeps `signed`, and only `signed`, of a member event's
// third_party_invite (the object itself stays, as in the reference
// implementations, even when it holds no `signed`).
TEST(RedactionTest, ThirdPartyInviteSignedOnlyFromV11) {
  struct Case {
    const char* content;
    const char* before_v11;
    const char* from_v11;
  };
  const Case cases[] = {
      {R"({"membership":"invite","third_party_invite":{"display_name":"d",)"
       R"("signed":{"token":"t"}}})",
       R"({"membership":"invite"})",
       R"({"membership":"invite","third_party_invite":{"signed":{"token":"t"}}})"},
      {R"({"membership":"invite","third_party_invite":{"display_name":"d"}})",
       R"({"membership":"invite"})",
       R"({"membership":"invite","third_party_invite":{}})"},
      {R"({"membership":"invite","third_party_invite":{"signed":"odd"}})",
       R"({"membership":"invite"})",
       R"({"membership":"invite","third_party_invite":{"signed":"odd"}})"},
      // Not an object: nothing to keep inside it.
      {R"({"membership":"invite","third_party_invite":"x"})",
       R"({"membership":"invite"})", R"({"membership":"invite"})"},
      {R"({"membership":"invite","third_party_invite":["signed"]})",
       R"({"membership":"invite"})", R"({"membership":"invite"})"},
      {R"({"membership":"invite"})", R"({"membership":"invite"})",
       R"({"membership":"invite"})"},
  };
  for (const Case& c : cases) {
    for (int version = kFirstVersion; version <= kLastVersion; ++version) {
      SCOPED_TRACE(absl::StrCat("room version ", version, ": ", c.content));
      std::string event =
          absl::StrCat(R"({"type":"m.room.member","content":)", c.content, "}");
      EXPECT_EQ(Redacted(version, event),
                absl::StrCat(R"({"content":)",
                             version >= 11 ? c.from_v11 : c.before_v11,
                             R"(,"type":"m.room.member"})"));
    }
  }
  // Other event types never keep it.
  EXPECT_EQ(Redacted(11, R"({"type":"m.room.message","content":)"
                         R"({"third_party_invite":{"signed":{}}}})"),
            R"({"content":{},"type":"m.room.message"})");
}

TEST(RedactionTest, MissingOrNonObjectContentBecomesEmptyObject) {
  const char* const contents[] = {"",          R"(,"content":null)",
                                  R"(,"content":"x")", R"(,"content":[1])",
                                  R"(,"content":7)",   R"(,"content":true)"};
  for (const char* type : {"m.room.create", "m.room.member", "m.room.message"}) {
    for (const char* content : contents) {
      for (int version = kFirstVersion; version <= kLastVersion; ++version) {
        SCOPED_TRACE(absl::StrCat(type, content, ", room version ", version));
        EXPECT_EQ(
            Redacted(version, absl::StrCat(R"({"type":")", type, "\"", content,
                                           R"(,"unsigned":{"age":1}})")),
            absl::StrCat(R"({"content":{},"type":")", type, "\"}"));
      }
    }
  }
}

TEST(RedactionTest, TypeMissingOrNotStringKeepsNoContent) {
  for (const char* type : {"", R"("type":7,)", R"("type":null,)",
                           R"("type":["m.room.create"],)"}) {
    for (int version = kFirstVersion; version <= kLastVersion; ++version) {
      SCOPED_TRACE(absl::StrCat(type, " room version ", version));
      Value event = Parse(absl::StrCat(
          "{", type, R"("content":{"creator":"@u:x","membership":"join"}})"));
      RedactEvent(RulesOf(version), &event);
      const Value* content = event.Find("content");
      ASSERT_NE(content, nullptr);
      EXPECT_EQ(ToJson(*content), "{}");
    }
  }
}

TEST(RedactionTest, UnsignedIsRemoved) {
  for (int version = kFirstVersion; version <= kLastVersion; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    EXPECT_EQ(Redacted(version,
                       R"({"type":"m.room.message","content":{"body":"b"},)"
                       R"("unsigned":{"age_ts":1,"redacted_because":{}},)"
                       R"("signatures":{"x":{"ed25519:1":"s"}},)"
                       R"("hashes":{"sha256":"h"}})"),
              R"({"content":{},"hashes":{"sha256":"h"},)"
              R"("signatures":{"x":{"ed25519:1":"s"}},"type":"m.room.message"})");
  }
}

TEST(RedactionTest, RedactingTwiceChangesNothing) {
  constexpr char kEvent[] =
      R"({"type":"m.room.power_levels","state_key":"","origin":"o",)"
      R"("content":{"ban":50,"invite":0,"users":{"@u:x":100},"x":1},)"
      R"("unsigned":{"age":1}})";
  for (int version = kFirstVersion; version <= kLastVersion; ++version) {
    SCOPED_TRACE(absl::StrCat("room version ", version));
    std::string once = Redacted(version, kEvent);
    EXPECT_EQ(Redacted(version, once), once);
  }
}

TEST(RedactionTest, NonObjectEventIsLeftAlone) {
  for (const char* json : {"[1,2]", "\"event\"", "null", "3"}) {
    SCOPED_TRACE(json);
    Value v = Parse(json);
    RedactEvent(RedactionRules::kV11, &v);
    EXPECT_EQ(ToJson(v), json);
  }
}

}  // namespace
}  // namespace keyverifier::core
