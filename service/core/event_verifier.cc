#include "service/core/event_verifier.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/crypto.h"
#include "service/core/redaction.h"
#include "service/core/server_name.h"

namespace keyverifier::core {
namespace {

// The spec's limit on a PDU: its canonical JSON, signatures included.
constexpr size_t kMaxPduBytes = 65536;
// How much text PrepareEvent parses at most. The limit above applies to the
// canonical form, so the input may be somewhat larger (pretty-printed, escaped
// characters); this bound only stops a hostile input from costing far more
// than any acceptable event could.
constexpr size_t kMaxEventInputBytes = 16 * kMaxPduBytes;

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("event: ", why));
}

const Value* FindString(const Value& obj, absl::string_view field) {
  const Value* v = obj.Find(field);
  return v && v->is_string() ? v : nullptr;
}

bool StringIs(const Value* v, absl::string_view s) {
  return v != nullptr && v->is_string() && v->string_value() == s;
}

// Inserts `.member` into the JSON path of an encoder message ("number at
// $.x: ..." becomes "number at $.member.x: ..."), for a member encoded on its
// own.
std::string AtMember(absl::string_view message, absl::string_view member) {
  constexpr absl::string_view kAt = "at $";
  size_t at = message.find(kAt);
  if (at == absl::string_view::npos) return absl::StrCat(member, ": ", message);
  at += kAt.size();
  return absl::StrCat(message.substr(0, at), ".", member, message.substr(at));
}

// What the content hash leaves out of the event.
constexpr absl::string_view kNotHashed[] = {"hashes", "signatures", "unsigned"};

absl::Status AppendContentHashBytes(const Value& event, NumberPolicy policy,
                                    std::string* out) {
  absl::Status s = AppendCanonicalJsonWithout(
      event, {kNotHashed[0], kNotHashed[1], kNotHashed[2]}, policy, out);
  return s.ok() ? s : Bad(s.message());
}

// The content hash of a received event, which also checks the whole event:
// the members the hash leaves out are encoded on their own, as the room
// version's number rules apply to every part of the event (from v6 `unsigned`
// may not carry a float either), and the spec's size limit is on the
// canonical JSON of the whole event, i.e. the hashed bytes plus those members.
// That costs far less than encoding the event a second time.
absl::StatusOr<Sha256Digest> ContentHashOfPdu(const Value& event,
                                              NumberPolicy policy) {
  std::string bytes;
  bytes.reserve(2048);
  absl::Status s = AppendContentHashBytes(event, policy, &bytes);
  if (!s.ok()) return s;
  size_t size = bytes.size();
  bool empty = size == 2;  // "{}"
  std::string member;
  for (absl::string_view name : kNotHashed) {
    const Value* value = event.Find(name);
    if (value == nullptr) continue;
    member.clear();
    s = AppendCanonicalJson(*value, policy, &member);
    if (!s.ok()) return Bad(AtMember(s.message(), name));
    // ,"name":value (these names need no escaping)
    size += (empty ? 0 : 1) + name.size() + 3 + member.size();
    empty = false;
  }
  if (size > kMaxPduBytes) {
    return Bad(absl::StrCat(size, " bytes as canonical JSON; the limit is ",
                            kMaxPduBytes));
  }
  return Sha256(bytes);
}

// An invite for a third-party identifier: the server that sends it may be
// another than the sender's.
bool IsThirdPartyInvite(const Value& event, const Value* content) {
  return content != nullptr && StringIs(event.Find("type"), "m.room.member") &&
         StringIs(content->Find("membership"), "invite") &&
         content->Find("third_party_invite") != nullptr;
}

// The servers that must sign `event`, sorted and unique (server-server API,
// "Validating hashes and signatures on received events"; for restricted joins
// the room version's authorisation rules).
absl::StatusOr<std::vector<std::string>> RequiredServers(
    const Value& event, const Value* content, const RoomVersion& room,
    const std::string& sender_server, absl::string_view event_id) {
  std::vector<std::string> servers;
  if (room.event_id_format == EventIdFormat::kExplicit) {
    absl::StatusOr<std::string> id_server = ServerNameOfId(event_id);
    if (!id_server.ok()) {
      return Bad(absl::StrCat("event_id: ", id_server.status().message()));
    }
    servers.push_back(*std::move(id_server));
  }
  if (room.restricted_join_signatures && content != nullptr &&
      StringIs(event.Find("type"), "m.room.member") &&
      StringIs(content->Find("membership"), "join")) {
    if (const Value* via = content->Find("join_authorised_via_users_server")) {
      // Present but unusable cannot name the server whose signature the join
      // needs; ignoring it would let such a join pass without that signature.
      if (!via->is_string()) {
        return Bad("content.join_authorised_via_users_server is not a string");
      }
      absl::StatusOr<std::string> via_server =
          ServerNameOfId(via->string_value());
      if (!via_server.ok()) {
        return Bad(absl::StrCat("content.join_authorised_via_users_server: ",
                                via_server.status().message()));
      }
      servers.push_back(*std::move(via_server));
    }
  }
  // A third-party invite does not need the sender's server. Where that leaves
  // no server at all (room versions 3 and later) the spec names no other
  // signer; the sender's server is then required after all, as a verdict that
  // checked no signature would vouch for nothing.
  if (!IsThirdPartyInvite(event, content) || servers.empty()) {
    servers.push_back(sender_server);
  }
  std::sort(servers.begin(), servers.end());
  servers.erase(std::unique(servers.begin(), servers.end()), servers.end());
  return servers;
}

}  // namespace

absl::string_view OutcomeName(EventVerdict::Outcome outcome) {
  switch (outcome) {
    case EventVerdict::Outcome::kValid: return "valid";
    case EventVerdict::Outcome::kValidButRedacted: return "valid_but_redacted";
    case EventVerdict::Outcome::kInvalid: return "invalid";
  }
  return "invalid";
}

absl::StatusOr<PreparedEvent> PrepareEvent(absl::string_view event_json,
                                           const RoomVersion& room) {
  ParseOptions limits;
  limits.max_bytes = kMaxEventInputBytes;
  absl::StatusOr<Value> v = ParseJson(event_json, limits);
  if (!v.ok()) return Bad(v.status().message());
  return PrepareEvent(*std::move(v), room);
}

absl::StatusOr<PreparedEvent> PrepareEvent(Value event, const RoomVersion& room) {
  if (!event.is_object()) return Bad("not a JSON object");
  PreparedEvent p;
  p.room_version = &room;

  const Value* sender = FindString(event, "sender");
  if (sender == nullptr) return Bad("sender is missing or not a string");
  p.sender = sender->string_value();
  absl::StatusOr<std::string> sender_server = ServerNameOfId(p.sender);
  if (!sender_server.ok()) {
    return Bad(absl::StrCat("sender: ", sender_server.status().message()));
  }
  const Value* ts = event.Find("origin_server_ts");
  if (ts == nullptr || !ts->is_number() ||
      ts->number_kind() != NumberKind::kInteger) {
    return Bad("origin_server_ts is missing or not an integer");
  }
  p.origin_server_ts = ts->int_value();
  const Value* signatures = event.Find("signatures");
  if (signatures != nullptr && !signatures->is_object()) {
    return Bad("signatures is not an object");
  }
  if (room.event_id_format == EventIdFormat::kExplicit) {
    const Value* id = FindString(event, "event_id");
    if (id == nullptr) {
      return Bad(absl::StrCat(
          "event_id is missing or not a string (required in room version ",
          room.id, ")"));
    }
    p.event_id = id->string_value();
  }

  const Value* content = event.Find("content");
  if (content != nullptr && !content->is_object()) content = nullptr;
  absl::StatusOr<std::vector<std::string>> required =
      RequiredServers(event, content, room, *sender_server, p.event_id);
  if (!required.ok()) return required.status();
  p.required_servers = *std::move(required);

  absl::StatusOr<Sha256Digest> hash = ContentHashOfPdu(event, room.number_policy);
  if (!hash.ok()) return hash.status();
  const Sha256Digest digest = *hash;
  p.content_hash = EncodeBase64Unpadded(AsStringView(digest));
  const Value* hashes = event.Find("hashes");
  const Value* sha256 = hashes ? FindString(*hashes, "sha256") : nullptr;
  if (sha256 != nullptr) {
    // Signers write the canonical unpadded form, so equal text is the common
    // case; otherwise compare decoded bytes, so padding or spare bits do not
    // matter.
    p.content_hash_matches = sha256->string_value() == p.content_hash;
    if (!p.content_hash_matches) {
      absl::StatusOr<std::string> given = DecodeBase64(sha256->string_value());
      p.content_hash_matches =
          given.ok() && *given == std::string(AsStringView(digest));
    }
  }

  // Redact, then the bytes the signatures cover.
  p.redacted = std::move(event);
  RedactEvent(room.redaction, &p.redacted);
  p.signed_bytes.reserve(1024);
  absl::Status s = AppendCanonicalJsonWithout(
      p.redacted, {"signatures", "unsigned"}, room.number_policy, &p.signed_bytes);
  if (!s.ok()) return Bad(s.message());
  if (room.event_id_format != EventIdFormat::kExplicit) {
    Sha256Digest ref = Sha256(p.signed_bytes);
    p.event_id = absl::StrCat(
        "$", EncodeBase64Unpadded(AsStringView(ref),
                                  room.event_id_format == EventIdFormat::kReferenceHash
                                      ? Base64Alphabet::kStandard
                                      : Base64Alphabet::kUrlSafe));
  }
  return p;
}

EventVerdict VerifyPreparedEvent(const PreparedEvent& event,
                                 const KeyLookup& keys, int64_t now_ms) {
  EventVerdict verdict;
  const Value* signatures = event.redacted.Find("signatures");
  const RoomVersion& room = *event.room_version;
  KeyFilter usable = [&](const VerifyKey& key) {
    return KeyUnusableForEvent(key, room, event.origin_server_ts, now_ms);
  };
  // PrepareEvent always lists a server; a hand-made PreparedEvent might not,
  // and checking nothing must not pass for valid.
  if (event.required_servers.empty()) {
    verdict.reason = Reason::kMissingSignature;
    verdict.message = "no server is required to sign this event";
    return verdict;
  }
  for (const std::string& server : event.required_servers) {
    SignatureCheck c = CheckServerSignatures(signatures, server,
                                             event.signed_bytes, keys(server),
                                             usable);
    if (!c.ok()) {
      verdict.outcome = EventVerdict::Outcome::kInvalid;
      verdict.reason = c.reason;
      verdict.message = std::move(c.message);
      return verdict;
    }
    verdict.checked.push_back({server, std::move(c.key_ids_verified)});
  }
  if (event.content_hash_matches) {
    verdict.outcome = EventVerdict::Outcome::kValid;
    verdict.reason = Reason::kOk;
  } else {
    verdict.outcome = EventVerdict::Outcome::kValidButRedacted;
    verdict.reason = Reason::kContentHashMismatch;
    verdict.message = absl::StrCat(
        "content hash does not match (computed ", event.content_hash,
        "); use the redacted event");
  }
  return verdict;
}

absl::Status HashAndSignEvent(Value* event, const RoomVersion& room,
                              absl::string_view server, absl::string_view key_id,
                              const Ed25519SigningKey& key) {
  if (!event->is_object()) return Bad("not a JSON object");
  std::string bytes;
  absl::Status s = AppendContentHashBytes(*event, room.number_policy, &bytes);
  if (!s.ok()) return s;
  Value hashes = Value::Object();
  hashes.Set("sha256",
             Value::String(EncodeBase64Unpadded(AsStringView(Sha256(bytes)))));
  event->Set("hashes", std::move(hashes));
  Value redacted = *event;
  RedactEvent(room.redaction, &redacted);
  s = SignJson(&redacted, server, key_id, key, room.number_policy);
  if (!s.ok()) return s;
  event->Set("signatures", *redacted.Find("signatures"));
  return absl::OkStatus();
}

}  // namespace keyverifier::core
