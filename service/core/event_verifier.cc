#include "service/core/event_verifier.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/crypto.h"
#include "service/core/redaction.h"
#include "service/core/server_name.h"

namespace keyverifier::core {
namespace {

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("event: ", why));
}

const Value* FindString(const Value& obj, absl::string_view field) {
  const Value* v = obj.Find(field);
  return v && v->is_string() ? v : nullptr;
}

absl::StatusOr<Sha256Digest> ContentHash(const Value& event, NumberPolicy policy,
                                         size_t size_hint) {
  std::string bytes;
  bytes.reserve(size_hint);
  absl::Status s = AppendCanonicalJsonWithout(
      event, {"hashes", "signatures", "unsigned"}, policy, &bytes);
  if (!s.ok()) return Bad(s.message());
  return Sha256(bytes);
}

// 3PID invites may be sent by a server other than the sender's.
bool IsThirdPartyInvite(const Value& event, const Value* content) {
  const Value* type = FindString(event, "type");
  if (type == nullptr || type->string_value() != "m.room.member" ||
      content == nullptr) {
    return false;
  }
  const Value* membership = FindString(*content, "membership");
  return membership && membership->string_value() == "invite" &&
         content->Find("third_party_invite") != nullptr;
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
  limits.max_bytes = 65536;  // the spec's limit on a PDU
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
  if (ts == nullptr || ts->type() != Value::Type::kNumber ||
      ts->number_kind() != NumberKind::kInteger) {
    return Bad("origin_server_ts is missing or not an integer");
  }
  p.origin_server_ts = ts->int_value();
  const Value* signatures = event.Find("signatures");
  if (signatures != nullptr && !signatures->is_object()) {
    return Bad("signatures is not an object");
  }

  // Who must sign.
  const Value* content = event.Find("content");
  if (content != nullptr && !content->is_object()) content = nullptr;
  if (!IsThirdPartyInvite(event, content)) {
    p.required_servers.push_back(*sender_server);
  }
  if (room.event_id_format == EventIdFormat::kExplicit) {
    const Value* id = FindString(event, "event_id");
    if (id == nullptr) {
      return Bad(absl::StrCat("event_id is missing (required in room version ",
                              room.id, ")"));
    }
    p.event_id = id->string_value();
    absl::StatusOr<std::string> id_server = ServerNameOfId(p.event_id);
    if (!id_server.ok()) {
      return Bad(absl::StrCat("event_id: ", id_server.status().message()));
    }
    p.required_servers.push_back(*id_server);
  }
  if (room.restricted_join_signatures && content != nullptr) {
    const Value* type = FindString(event, "type");
    const Value* membership = FindString(*content, "membership");
    const Value* via = FindString(*content, "join_authorised_via_users_server");
    if (type && type->string_value() == "m.room.member" && membership &&
        membership->string_value() == "join" && via) {
      absl::StatusOr<std::string> via_server = ServerNameOfId(via->string_value());
      if (!via_server.ok()) {
        return Bad(absl::StrCat("content.join_authorised_via_users_server: ",
                                via_server.status().message()));
      }
      p.required_servers.push_back(*via_server);
    }
  }
  std::sort(p.required_servers.begin(), p.required_servers.end());
  p.required_servers.erase(
      std::unique(p.required_servers.begin(), p.required_servers.end()),
      p.required_servers.end());

  // Content hash over the full event.
  absl::StatusOr<Sha256Digest> hash = ContentHash(event, room.number_policy, 2048);
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
  absl::StatusOr<Sha256Digest> hash = ContentHash(*event, room.number_policy, 0);
  if (!hash.ok()) return hash.status();
  Value hashes = Value::Object();
  hashes.Set("sha256", Value::String(EncodeBase64Unpadded(AsStringView(*hash))));
  event->Set("hashes", std::move(hashes));
  Value redacted = *event;
  RedactEvent(room.redaction, &redacted);
  absl::Status s = SignJson(&redacted, server, key_id, key, room.number_policy);
  if (!s.ok()) return s;
  event->Set("signatures", *redacted.Find("signatures"));
  return absl::OkStatus();
}

}  // namespace keyverifier::core
