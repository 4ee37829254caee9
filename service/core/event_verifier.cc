#include "service/core/event_verifier.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/json_view.h"
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

// An event is read either from a JsonView of its text or from a Value tree;
// this adapter gives Values the JsonView's reading interface, so the code
// below is written once for both.
struct ValueDoc {
  using Ref = const Value*;
  Ref Find(Ref n, absl::string_view key) const {
    return n != nullptr ? n->Find(key) : nullptr;
  }
  bool is_string(Ref n) const { return n != nullptr && n->is_string(); }
  bool is_object(Ref n) const { return n != nullptr && n->is_object(); }
  bool is_integer(Ref n) const {
    return n != nullptr && n->is_number() &&
           n->number_kind() == NumberKind::kInteger;
  }
  absl::string_view string_value(Ref n) const { return n->string_value(); }
  int64_t int_value(Ref n) const { return n->int_value(); }
  size_t size(Ref n) const { return n->members().size(); }
  absl::string_view key(Ref n, size_t i) const { return n->members()[i].first; }
  Ref child(Ref n, size_t i) const { return &n->members()[i].second; }
  absl::Status AppendCanonicalJson(Ref n, NumberPolicy policy,
                                   std::string* out) const {
    return core::AppendCanonicalJson(*n, policy, out);
  }
  absl::Status AppendCanonicalJsonWithout(
      Ref n, std::initializer_list<absl::string_view> skip, NumberPolicy policy,
      std::string* out, std::vector<MemberSpan>* spans = nullptr) const {
    return core::AppendCanonicalJsonWithout(*n, skip, policy, out, spans);
  }
  Value ToValue(Ref n) const { return n != nullptr ? *n : Value(); }
};

template <typename Doc>
bool StringIs(const Doc& doc, typename Doc::Ref n, absl::string_view s) {
  return doc.is_string(n) && doc.string_value(n) == s;
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

template <typename Doc>
absl::Status AppendContentHashBytes(const Doc& doc, typename Doc::Ref event,
                                    NumberPolicy policy, std::string* out,
                                    std::vector<MemberSpan>* spans = nullptr) {
  absl::Status s = doc.AppendCanonicalJsonWithout(
      event, {kNotHashed[0], kNotHashed[1], kNotHashed[2]}, policy, out, spans);
  return s.ok() ? s : Bad(s.message());
}

// A received event encoded for its content hash, with what the signed bytes
// can take from it instead of encoding it again.
struct HashedEvent {
  std::string bytes;              // what the content hash is taken of
  std::vector<MemberSpan> spans;  // where each top-level member went in bytes
  std::string hashes;             // canonical JSON of `hashes`, if present
};

// Encodes the event for its content hash, which also checks the whole event:
// the members the hash leaves out are encoded on their own, as the room
// version's number rules apply to every part of the event (from v6 `unsigned`
// may not carry a float either), and the spec's size limit is on the
// canonical JSON of the whole event, i.e. the hashed bytes plus those members.
// That costs far less than encoding the event a second time.
template <typename Doc>
absl::Status EncodeForContentHash(const Doc& doc, typename Doc::Ref event,
                                  NumberPolicy policy, HashedEvent* out) {
  out->bytes.reserve(2048);
  absl::Status s =
      AppendContentHashBytes(doc, event, policy, &out->bytes, &out->spans);
  if (!s.ok()) return s;
  size_t size = out->bytes.size();
  bool empty = size == 2;  // "{}"
  std::string other;
  for (absl::string_view name : kNotHashed) {
    const typename Doc::Ref value = doc.Find(event, name);
    if (!value) continue;
    std::string& member = name == kNotHashed[0] ? out->hashes : other;
    member.clear();
    s = doc.AppendCanonicalJson(value, policy, &member);
    if (!s.ok()) return Bad(AtMember(s.message(), name));
    // ,"name":value (these names need no escaping)
    size += (empty ? 0 : 1) + name.size() + 3 + member.size();
    empty = false;
  }
  if (size > kMaxPduBytes) {
    return Bad(absl::StrCat(size, " bytes as canonical JSON; the limit is ",
                            kMaxPduBytes));
  }
  return absl::OkStatus();
}

// Appends `"key":` for a key redaction keeps; those are all plain names that
// need no escaping.
void PutKey(absl::string_view key, std::string* out) {
  out->push_back('"');
  out->append(key.data(), key.size());
  out->append("\":", 2);
}

// The redacted event's content, as canonical JSON.
template <typename Doc>
absl::Status AppendRedactedContent(const Doc& doc, typename Doc::Ref content,
                                   const RedactionPlan& plan,
                                   NumberPolicy policy, std::string* out) {
  if (!doc.is_object(content)) {
    out->append("{}", 2);
    return absl::OkStatus();
  }
  if (plan.keep_all_content) return doc.AppendCanonicalJson(content, policy, out);
  out->push_back('{');
  bool first = true;
  const size_t n = doc.size(content);
  for (size_t i = 0; i < n; ++i) {
    const absl::string_view key = doc.key(content, i);
    const typename Doc::Ref value = doc.child(content, i);
    const bool tpi =
        plan.third_party_invite_signed_only && key == "third_party_invite";
    if (tpi ? !doc.is_object(value) : !plan.KeepContent(key)) continue;
    if (!first) out->push_back(',');
    first = false;
    PutKey(key, out);
    absl::Status s;
    if (tpi) {
      out->push_back('{');
      if (const typename Doc::Ref signed_part = doc.Find(value, "signed")) {
        PutKey("signed", out);
        s = doc.AppendCanonicalJson(signed_part, policy, out);
      }
      out->push_back('}');
    } else {
      s = doc.AppendCanonicalJson(value, policy, out);
    }
    if (!s.ok()) return s;
  }
  out->push_back('}');
  return absl::OkStatus();
}

// The bytes the signatures cover: the canonical JSON of the redacted event
// without `signatures` and `unsigned` (the same as redacting a copy with
// RedactEvent and encoding that), put together from the members already
// encoded for the content hash; only the redacted content is written anew.
template <typename Doc>
absl::Status AppendSignedBytes(const Doc& doc, typename Doc::Ref event,
                               const RedactionPlan& plan, NumberPolicy policy,
                               const HashedEvent& hashed, std::string* out) {
  constexpr absl::string_view kContent = "content";
  out->push_back('{');
  bool first = true;
  bool content_done = false;
  auto put_content = [&](typename Doc::Ref content) {
    if (!first) out->push_back(',');
    first = false;
    content_done = true;
    PutKey(kContent, out);
    return AppendRedactedContent(doc, content, plan, policy, out);
  };
  const size_t n = doc.size(event);
  for (size_t i = 0; i < n; ++i) {
    const absl::string_view key = doc.key(event, i);
    // Redaction always leaves a `content`; written in its place in the order.
    if (!content_done && key >= kContent) {
      absl::Status s = put_content(key == kContent ? doc.child(event, i)
                                                   : typename Doc::Ref());
      if (!s.ok()) return s;
      if (key == kContent) continue;
    }
    if (key == "signatures" || key == "unsigned" || !plan.KeepTopLevel(key)) {
      continue;
    }
    if (!first) out->push_back(',');
    first = false;
    if (key == kNotHashed[0]) {
      PutKey(key, out);
      out->append(hashed.hashes);
    } else {
      const MemberSpan& span = hashed.spans[i];
      out->append(hashed.bytes, span.begin, span.end - span.begin);
    }
  }
  if (!content_done) {
    absl::Status s = put_content(typename Doc::Ref());
    if (!s.ok()) return s;
  }
  out->push_back('}');
  return absl::OkStatus();
}

// An invite for a third-party identifier: the server that sends it may be
// another than the sender's.
template <typename Doc>
bool IsThirdPartyInvite(const Doc& doc, absl::string_view type,
                        typename Doc::Ref content) {
  return doc.is_object(content) && type == "m.room.member" &&
         StringIs(doc, doc.Find(content, "membership"), "invite") &&
         doc.Find(content, "third_party_invite");
}

// The servers that must sign `event`, sorted and unique (server-server API,
// "Validating hashes and signatures on received events"; for restricted joins
// the room version's authorisation rules).
template <typename Doc>
absl::StatusOr<std::vector<ServerName>> RequiredServers(
    const Doc& doc, absl::string_view type, typename Doc::Ref content,
    const RoomVersion& room, const ServerName& sender_server,
    absl::string_view event_id) {
  std::vector<ServerName> servers;
  if (room.event_id_format == EventIdFormat::kExplicit) {
    absl::StatusOr<ServerName> id_server = ServerNameOfId(event_id);
    if (!id_server.ok()) {
      return Bad(absl::StrCat("event_id: ", id_server.status().message()));
    }
    servers.push_back(*std::move(id_server));
  }
  if (room.restricted_join_signatures && doc.is_object(content) &&
      type == "m.room.member" &&
      StringIs(doc, doc.Find(content, "membership"), "join")) {
    if (const typename Doc::Ref via =
            doc.Find(content, "join_authorised_via_users_server")) {
      // Present but unusable cannot name the server whose signature the join
      // needs; ignoring it would let such a join pass without that signature.
      if (!doc.is_string(via)) {
        return Bad("content.join_authorised_via_users_server is not a string");
      }
      absl::StatusOr<ServerName> via_server = ServerNameOfId(doc.string_value(via));
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
  if (!IsThirdPartyInvite(doc, type, content) || servers.empty()) {
    servers.push_back(sender_server);
  }
  std::sort(servers.begin(), servers.end());
  servers.erase(std::unique(servers.begin(), servers.end()), servers.end());
  return servers;
}

template <typename Doc>
absl::StatusOr<PreparedEvent> Prepare(const Doc& doc, typename Doc::Ref event,
                                      const RoomVersion& room) {
  if (!doc.is_object(event)) return Bad("not a JSON object");
  PreparedEvent p;
  p.room_version = &room;

  const typename Doc::Ref sender = doc.Find(event, "sender");
  if (!doc.is_string(sender)) return Bad("sender is missing or not a string");
  p.sender = std::string(doc.string_value(sender));
  absl::StatusOr<ServerName> sender_server = ServerNameOfId(p.sender);
  if (!sender_server.ok()) {
    return Bad(absl::StrCat("sender: ", sender_server.status().message()));
  }
  const typename Doc::Ref ts = doc.Find(event, "origin_server_ts");
  if (!doc.is_integer(ts)) {
    return Bad("origin_server_ts is missing or not an integer");
  }
  p.origin_server_ts = doc.int_value(ts);
  const typename Doc::Ref signatures = doc.Find(event, "signatures");
  if (signatures && !doc.is_object(signatures)) {
    return Bad("signatures is not an object");
  }
  if (room.event_id_format == EventIdFormat::kExplicit) {
    const typename Doc::Ref id = doc.Find(event, "event_id");
    if (!doc.is_string(id)) {
      return Bad(absl::StrCat(
          "event_id is missing or not a string (required in room version ",
          room.id, ")"));
    }
    p.event_id = std::string(doc.string_value(id));
  }

  const typename Doc::Ref content = doc.Find(event, "content");
  const typename Doc::Ref type_node = doc.Find(event, "type");
  const absl::string_view type =
      doc.is_string(type_node) ? doc.string_value(type_node) : absl::string_view();
  absl::StatusOr<std::vector<ServerName>> required =
      RequiredServers(doc, type, content, room, *sender_server, p.event_id);
  if (!required.ok()) return required.status();
  p.required_servers = *std::move(required);

  HashedEvent hashed;
  absl::Status s = EncodeForContentHash(doc, event, room.number_policy, &hashed);
  if (!s.ok()) return s;
  const Sha256Digest digest = Sha256(hashed.bytes);
  p.content_hash = EncodeBase64Unpadded(AsStringView(digest));
  const typename Doc::Ref sha256 = doc.Find(doc.Find(event, "hashes"), "sha256");
  if (doc.is_string(sha256)) {
    // Signers write the canonical unpadded form, so equal text is the common
    // case; otherwise compare decoded bytes, so padding or spare bits do not
    // matter.
    p.content_hash_matches = doc.string_value(sha256) == p.content_hash;
    if (!p.content_hash_matches) {
      absl::StatusOr<std::string> given = DecodeBase64(doc.string_value(sha256));
      p.content_hash_matches =
          given.ok() && *given == std::string(AsStringView(digest));
    }
  }

  // The bytes the signatures cover, and the reference hash of them.
  p.signed_bytes.reserve(1024);
  s = AppendSignedBytes(doc, event, PlanRedaction(room.redaction, type),
                        room.number_policy, hashed, &p.signed_bytes);
  if (!s.ok()) return Bad(s.message());
  if (room.event_id_format != EventIdFormat::kExplicit) {
    Sha256Digest ref = Sha256(p.signed_bytes);
    p.event_id = absl::StrCat(
        "$", EncodeBase64Unpadded(AsStringView(ref),
                                  room.event_id_format == EventIdFormat::kReferenceHash
                                      ? Base64Alphabet::kStandard
                                      : Base64Alphabet::kUrlSafe));
  }
  p.signatures = doc.ToValue(signatures);
  return p;
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
  // The view reads the common event without building Values; what it does
  // not take (rare number forms, invalid JSON) is parsed into Values, which
  // decide those and word the parse error precisely. Reading either way gives
  // the same result, errors included (tests/core/event_read_paths_test).
  thread_local JsonView view;
  if (view.Parse(event_json, limits)) return Prepare(view, view.root(), room);
  absl::StatusOr<Value> v = ParseJson(event_json, limits);
  if (!v.ok()) return Bad(v.status().message());
  return PrepareEvent(*v, room);
}

absl::StatusOr<PreparedEvent> PrepareEvent(const Value& event,
                                           const RoomVersion& room) {
  return Prepare(ValueDoc{}, &event, room);
}

absl::StatusOr<Value> RedactedEvent(const PreparedEvent& event) {
  absl::StatusOr<Value> redacted = ParseJson(event.signed_bytes);
  if (!redacted.ok()) return redacted.status();
  if (!redacted->is_object()) {
    return absl::InvalidArgumentError("event: signed bytes are not an object");
  }
  if (!event.signatures.is_null()) redacted->Set("signatures", event.signatures);
  return redacted;
}

EventVerdict VerifyPreparedEvent(const PreparedEvent& event, const KeyLookup& keys) {
  EventVerdict verdict;
  const Value* signatures = &event.signatures;
  const RoomVersion& room = *event.room_version;
  KeyFilter usable = [&](const VerifyKey& key) {
    return KeyUnusableForEvent(key, room, event.origin_server_ts);
  };
  // PrepareEvent always lists a server; a hand-made PreparedEvent might not,
  // and checking nothing must not pass for valid.
  if (event.required_servers.empty()) {
    verdict.reason = Reason::kMissingSignature;
    verdict.message = "no server is required to sign this event";
    return verdict;
  }
  for (const ServerName& name : event.required_servers) {
    const std::string& server = name.str();
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
  absl::Status s =
      AppendContentHashBytes(ValueDoc{}, event, room.number_policy, &bytes);
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
