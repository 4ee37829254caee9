// Event preparation and verification (service/core/event_verifier.h), with
// redaction (redaction.h) for every room version (room_version.h).
//
// The input is an event (PDU) as JSON; it is prepared for each room version
// 1-12 and verified against the spec's test key (seed of the appendix
// "Cryptographic Test Vectors"), which every server is taken to hold as
// ed25519:1, so the spec's signed examples verify.
//
// Invariants, per room version:
// - PrepareEvent reads the text (JsonView) and the parsed Value alike:
//   same result, same error.
// - A prepared event lists its required servers sorted, unique, non-empty;
//   its signed bytes are canonical JSON of an object without signatures or
//   unsigned; its content hash is 32 bytes of unpadded base64; from v3 the
//   event id is '$' and the reference hash.
// - The redacted event (RedactedEvent) is a fixed point of RedactEvent and
//   prepares to the same signed bytes and event id, requiring no server the
//   event did not.
// - The verdict is consistent: valid only with a matching content hash,
//   valid-but-redacted only without; every required server checked when not
//   invalid; the redacted event's signatures pass or fail as the event's.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/redaction.h"
#include "service/core/room_version.h"
#include "service/core/verify_key.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::core {
namespace {

constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
constexpr int64_t kNow = 1'700'000'000'000;
constexpr size_t kMaxEventInputBytes = 16 * 65536;

const std::vector<VerifyKey>& Keys() {
  static const auto* keys = [] {
    const Ed25519SigningKey key = *Ed25519SigningKey::FromSeed(*DecodeBase64(kSpecSeed));
    VerifyKey current;
    current.key_id = "ed25519:1";
    current.public_key = key.public_key();
    current.valid_until_ts = kNow + 24 * 3600 * 1000;
    VerifyKey old = current;
    old.key_id = "ed25519:old";
    old.valid_until_ts.reset();
    old.expired_ts = 1'500'000;
    return new std::vector<VerifyKey>{current, old};
  }();
  return *keys;
}

absl::Span<const VerifyKey> AnyServer(absl::string_view) { return Keys(); }

// Joins server names by their text.
void NameText(std::string* out, const ServerName& name) { out->append(name.str()); }

std::string Describe(const absl::StatusOr<PreparedEvent>& p) {
  if (!p.ok()) return p.status().ToString();
  return absl::StrCat(p->signed_bytes, "\n", p->event_id, " ", p->content_hash, " ",
                      p->content_hash_matches, " ", p->sender, " ", p->origin_server_ts,
                      " ", ToJson(p->signatures), " [",
                      absl::StrJoin(p->required_servers, ",", NameText), "]");
}

std::string DescribeVerdict(const EventVerdict& v) {
  std::string out = absl::StrCat(OutcomeName(v.outcome), " ", ReasonName(v.reason), " ",
                                 v.message);
  for (const EventVerdict::Checked& c : v.checked) {
    absl::StrAppend(&out, " ", c.server, ":", absl::StrJoin(c.key_ids, ","));
  }
  return out;
}

void CheckPrepared(const PreparedEvent& p, const RoomVersion& room) {
  FUZZ_CHECK(p.room_version == &room);
  FUZZ_CHECK(!p.required_servers.empty());
  FUZZ_CHECK(std::is_sorted(p.required_servers.begin(), p.required_servers.end()));
  FUZZ_CHECK(std::adjacent_find(p.required_servers.begin(), p.required_servers.end()) ==
             p.required_servers.end());

  absl::StatusOr<Value> signed_value = ParseJson(p.signed_bytes);
  FUZZ_CHECK_MSG(signed_value.ok(), signed_value.status().ToString());
  FUZZ_CHECK(signed_value->is_object());
  FUZZ_CHECK(signed_value->Find("signatures") == nullptr);
  FUZZ_CHECK(signed_value->Find("unsigned") == nullptr);
  FUZZ_CHECK(signed_value->Find("content") != nullptr &&
             signed_value->Find("content")->is_object());
  absl::StatusOr<std::string> canonical = CanonicalJson(*signed_value, room.number_policy);
  FUZZ_CHECK_MSG(canonical.ok(), canonical.status().ToString());
  FUZZ_CHECK_EQ(*canonical, p.signed_bytes);

  absl::StatusOr<std::string> hash = DecodeBase64(p.content_hash);
  FUZZ_CHECK(hash.ok() && hash->size() == 32);
  FUZZ_CHECK_EQ(EncodeBase64Unpadded(*hash), p.content_hash);
  if (room.event_id_format != EventIdFormat::kExplicit) {
    FUZZ_CHECK_MSG(p.event_id.size() == 44 && p.event_id[0] == '$', p.event_id);
  }
}

void CheckVerdict(const PreparedEvent& p, const EventVerdict& v) {
  switch (v.outcome) {
    case EventVerdict::Outcome::kValid:
      FUZZ_CHECK(p.content_hash_matches && v.reason == Reason::kOk);
      break;
    case EventVerdict::Outcome::kValidButRedacted:
      FUZZ_CHECK(!p.content_hash_matches && v.reason == Reason::kContentHashMismatch);
      break;
    case EventVerdict::Outcome::kInvalid:
      FUZZ_CHECK(v.reason != Reason::kOk && v.reason != Reason::kContentHashMismatch);
      return;
  }
  FUZZ_CHECK(v.checked.size() == p.required_servers.size());
  for (size_t i = 0; i < v.checked.size(); ++i) {
    FUZZ_CHECK_EQ(v.checked[i].server, p.required_servers[i].str());
    FUZZ_CHECK(!v.checked[i].key_ids.empty());
  }
}

void RunRoomVersion(absl::string_view text, const absl::StatusOr<Value>& parsed,
                    const RoomVersion& room) {
  const absl::StatusOr<PreparedEvent> p = PrepareEvent(text, room);
  if (parsed.ok() && text.size() <= kMaxEventInputBytes) {
    FUZZ_CHECK_EQ(Describe(p), Describe(PrepareEvent(*parsed, room)));
  }
  if (!p.ok()) return;
  CheckPrepared(*p, room);

  const EventVerdict verdict = VerifyPreparedEvent(*p, AnyServer);
  CheckVerdict(*p, verdict);

  // The redacted event: what a caller keeps when the content hash fails.
  absl::StatusOr<Value> redacted = RedactedEvent(*p);
  FUZZ_CHECK_MSG(redacted.ok(), redacted.status().ToString());
  Value again = *redacted;
  RedactEvent(room.redaction, &again);
  FUZZ_CHECK_MSG(again == *redacted, ToJson(*redacted) + "\nredacted again: " + ToJson(again));
  const absl::StatusOr<PreparedEvent> r = PrepareEvent(*redacted, room);
  FUZZ_CHECK_MSG(r.ok(), r.status().ToString());
  FUZZ_CHECK_EQ(r->signed_bytes, p->signed_bytes);
  FUZZ_CHECK_EQ(r->event_id, p->event_id);
  // Redaction may drop what named another server (v8 keeps no
  // join_authorised_via_users_server), never add one.
  FUZZ_CHECK_MSG(std::includes(p->required_servers.begin(), p->required_servers.end(),
                               r->required_servers.begin(), r->required_servers.end()),
                 absl::StrCat("room version ", room.id, ": [",
                              absl::StrJoin(r->required_servers, ",", NameText), "]"));
  const EventVerdict redacted_verdict = VerifyPreparedEvent(*r, AnyServer);
  CheckVerdict(*r, redacted_verdict);
  if (r->required_servers == p->required_servers) {
    FUZZ_CHECK_MSG((redacted_verdict.outcome == EventVerdict::Outcome::kInvalid) ==
                       (verdict.outcome == EventVerdict::Outcome::kInvalid),
                   DescribeVerdict(verdict) + "\nredacted: " + DescribeVerdict(redacted_verdict));
  } else if (verdict.outcome != EventVerdict::Outcome::kInvalid) {
    FUZZ_CHECK(redacted_verdict.outcome != EventVerdict::Outcome::kInvalid);
  }
}

}  // namespace
}  // namespace keyverifier::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::core;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<Value> parsed = ParseJson(text);
  if (parsed.ok() && parsed->is_object()) {
    // Redaction alone, every rule set: a fixed point after one pass, and
    // always with a content object.
    for (RedactionRules rules : {RedactionRules::kV1, RedactionRules::kV6, RedactionRules::kV8,
                                 RedactionRules::kV9, RedactionRules::kV11}) {
      Value once = *parsed;
      RedactEvent(rules, &once);
      FUZZ_CHECK(once.Find("content") != nullptr && once.Find("content")->is_object());
      FUZZ_CHECK(once.Find("unsigned") == nullptr);
      Value twice = once;
      RedactEvent(rules, &twice);
      FUZZ_CHECK(once == twice);
    }
  }
  for (int version = 1; version <= 12; ++version) {
    absl::StatusOr<const RoomVersion*> room = LookupRoomVersion(absl::StrCat(version));
    FUZZ_CHECK(room.ok());
    RunRoomVersion(text, parsed, **room);
  }
  return 0;
}
