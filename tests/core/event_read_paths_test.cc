// PrepareEvent reads an event in one of two ways: straight from its text
// through a JsonView, or, for what the view leaves to the careful parser,
// through Values. Both must give the same result, errors included, and the
// bytes they sign must be those of the redaction algorithm (RedactEvent).
// Generated events cover every redaction rule, every room version and the
// inputs the view declines (escapes, numbers beyond int64, fractions,
// duplicate keys, invalid JSON).
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "service/core/canonical_json.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/json_view.h"
#include "service/core/redaction.h"
#include "service/core/room_version.h"

namespace keyverifier::core {
namespace {

class EventGenerator {
 public:
  explicit EventGenerator(uint32_t seed) : rng_(seed) {}

  std::string Event() {
    std::vector<std::string> members;
    if (Chance(95)) members.push_back(Member("sender", Sender()));
    if (Chance(95)) members.push_back(Member("origin_server_ts", Timestamp()));
    if (Chance(90)) members.push_back(Member("type", Type()));
    if (Chance(90)) members.push_back(Member("content", Content()));
    if (Chance(80)) members.push_back(Member("signatures", Signatures()));
    if (Chance(70)) {
      members.push_back(Member(
          "hashes", Chance(90) ? R"({"sha256":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"})"
                               : Scalar()));
    }
    if (Chance(60)) members.push_back(Member("event_id", Pick({R"("$abc:example.org")", R"("$bad")", "7"})));
    for (const char* key :
         {"room_id", "state_key", "depth", "prev_events", "auth_events",
          "prev_state", "origin", "membership", "unsigned", "redacts", "age",
          "a", "zzz", "conten", "contenu", "cont\\u0065nt", "\\u00e9t\\u00e9",
          "\xc3\xa9t\xc3\xa9"}) {
      if (Chance(25)) members.push_back(Member(key, Any(2)));
    }
    if (Chance(3) && !members.empty()) members.push_back(members.front());  // duplicate
    std::shuffle(members.begin(), members.end(), rng_);
    std::string text = absl::StrCat("{", absl::StrJoin(members, Chance(50) ? "," : " ,\n "), "}");
    if (Chance(2)) text.pop_back();  // not JSON
    return text;
  }

 private:
  bool Chance(int percent) { return Uniform(100) < percent; }
  int Uniform(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::string Pick(std::initializer_list<const char*> options) {
    auto it = options.begin();
    std::advance(it, Uniform(static_cast<int>(options.size())));
    return *it;
  }
  static std::string Member(absl::string_view key, absl::string_view value) {
    return absl::StrCat("\"", key, "\":", value);
  }

  std::string Sender() {
    if (Chance(5)) return Pick({R"("no-colon")", "12"});
    return Pick({R"("@alice:example.org")", R"("@bob:other.example.net:8448")",
                 R"("@x:[::1]")"});
  }
  std::string Timestamp() {
    if (Chance(10)) {
      return Pick({"1.5", "1e3", "9007199254740993", "18446744073709551615",
                   R"("soon")"});
    }
    return Pick({"1690000000000", "0", "-5"});
  }
  std::string Type() {
    return Pick({R"("m.room.message")", R"("m.room.member")", R"("m.room.create")",
                 R"("m.room.join_rules")", R"("m.room.power_levels")",
                 R"("m.room.aliases")", R"("m.room.history_visibility")",
                 R"("m.room.redaction")", R"("m.room.m\u0065mber")", "null"});
  }
  std::string Signatures() {
    if (Chance(5)) return Scalar();
    return absl::StrCat(R"({"example.org":{"ed25519:a":"c2lnbmF0dXJl"},)",
                        R"("via.example":{"ed25519:b":)", Scalar(), "}}");
  }
  std::string Content() {
    if (Chance(5)) return Scalar();
    std::vector<std::string> members;
    auto add = [&](const char* key, const std::string& value) {
      if (Chance(40)) members.push_back(Member(key, value));
    };
    add("membership", Pick({R"("join")", R"("invite")", R"("leave")", "3"}));
    add("join_authorised_via_users_server",
        Pick({R"("@u:via.example")", R"("@u:example.org")", R"("bad")", "1"}));
    add("third_party_invite",
        Pick({R"({"signed":{"mxid":"@x:y","token":"t"},"display_name":"d"})",
              R"({"display_name":"d"})", R"("flat")"}));
    for (const char* key :
         {"creator", "join_rule", "allow", "ban", "events", "events_default",
          "invite", "kick", "redact", "state_default", "users", "users_default",
          "aliases", "history_visibility", "redacts", "body", "msgtype",
          "m.relates_to", "\\u0062ody", "zz"}) {
      add(key, Any(2));
    }
    std::shuffle(members.begin(), members.end(), rng_);
    return absl::StrCat("{", absl::StrJoin(members, ","), "}");
  }
  // Mostly what events carry; now and then what some room versions refuse
  // or what is no JSON at all.
  std::string Scalar() {
    if (Chance(4)) {
      return Pick({"9007199254740992", "-9007199254740992",
                   "123456789012345678901234567890", "2.5", "1E2", "1e400",
                   "-0.0", R"("\ud800 lone")", "\"raw \x01 control\"",
                   "\"bad \xc3 utf-8\""});
    }
    return Pick({"null", "true", "false", "0", "-0", "42", "-17",
                 "9007199254740991", "-9007199254740991", R"("")", R"("text")",
                 R"("line\nbreak \"quoted\" tab\t")", R"("caf\u00e9 \ud83d\ude00")",
                 "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", R"("\u0000 nul")",
                 "\"\x7f del\""});
  }
  std::string Any(int depth) {
    if (depth == 0 || Chance(60)) return Scalar();
    std::vector<std::string> parts;
    const int n = Uniform(4);
    if (Chance(50)) {
      for (int i = 0; i < n; ++i) parts.push_back(Any(depth - 1));
      return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
    }
    for (int i = 0; i < n; ++i) {
      parts.push_back(Member(Pick({"k", "a", "b", "\\u006b", "z"}), Any(depth - 1)));
    }
    return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
  }

  std::mt19937 rng_;
};

// What the redaction algorithm gives for `event`, as the bytes the
// signatures cover and as the whole redacted event.
struct Redacted {
  std::string signed_bytes;
  std::string event;
};
absl::StatusOr<Redacted> ByRedactEvent(const Value& event, const RoomVersion& room) {
  Value copy = event;
  RedactEvent(room.redaction, &copy);
  Redacted r;
  absl::Status s = AppendCanonicalJsonWithout(copy, {"signatures", "unsigned"},
                                              room.number_policy, &r.signed_bytes);
  if (!s.ok()) return s;
  absl::StatusOr<std::string> whole = CanonicalJson(copy, room.number_policy);
  if (!whole.ok()) return whole.status();
  r.event = *std::move(whole);
  return r;
}

TEST(EventReadPathsTest, ViewAndValuesAgreeAndSignWhatRedactionKeeps) {
  const std::vector<std::string> versions = {"1", "2",  "3",  "4",  "5", "6",
                                             "7", "8",  "9",  "10", "11", "12"};
  EventGenerator gen(20261202);
  int prepared = 0, refused = 0, viewed = 0;
  JsonView view;
  for (int i = 0; i < 8000; ++i) {
    const std::string text = gen.Event();
    absl::StatusOr<Value> parsed = ParseJson(text);
    const bool view_reads_it = view.Parse(text);
    for (const std::string& id : versions) {
      SCOPED_TRACE(absl::StrCat("room version ", id, ", event ", text));
      const RoomVersion& room = **LookupRoomVersion(id);
      absl::StatusOr<PreparedEvent> from_text = PrepareEvent(text, room);
      if (!parsed.ok()) {
        ASSERT_FALSE(from_text.ok());
        EXPECT_EQ(from_text.status().message(),
                  absl::StrCat("event: ", parsed.status().message()));
        ++refused;
        continue;
      }
      absl::StatusOr<PreparedEvent> from_value = PrepareEvent(*parsed, room);
      ASSERT_EQ(from_text.status(), from_value.status());
      if (!from_text.ok()) {
        ++refused;
        continue;
      }
      ++prepared;
      viewed += view_reads_it;
      const PreparedEvent& a = *from_text;
      const PreparedEvent& b = *from_value;
      EXPECT_EQ(a.signed_bytes, b.signed_bytes);
      EXPECT_EQ(a.event_id, b.event_id);
      EXPECT_EQ(a.content_hash, b.content_hash);
      EXPECT_EQ(a.content_hash_matches, b.content_hash_matches);
      EXPECT_EQ(a.sender, b.sender);
      EXPECT_EQ(a.origin_server_ts, b.origin_server_ts);
      EXPECT_EQ(a.required_servers, b.required_servers);
      EXPECT_EQ(a.signatures, b.signatures);

      absl::StatusOr<Redacted> want = ByRedactEvent(*parsed, room);
      ASSERT_TRUE(want.ok()) << want.status();
      EXPECT_EQ(a.signed_bytes, want->signed_bytes);
      absl::StatusOr<Value> whole = RedactedEvent(a);
      ASSERT_TRUE(whole.ok()) << whole.status();
      absl::StatusOr<std::string> text = CanonicalJson(*whole, room.number_policy);
      ASSERT_TRUE(text.ok()) << text.status();
      EXPECT_EQ(*text, want->event);
    }
  }
  // The generator must reach both outcomes, and both ways of reading, in
  // numbers, or the comparison above proves little.
  std::printf("%d prepared (%d of them readable by the view), %d refused\n",
              prepared, viewed, refused);
  EXPECT_GT(prepared, 10000);
  EXPECT_GT(viewed, 8000);
  EXPECT_GT(prepared - viewed, 500);
  EXPECT_GT(refused, 10000);
}

}  // namespace
}  // namespace keyverifier::core
