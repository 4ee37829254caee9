#include "service/api/verifier.h"

#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "service/core/event_verifier.h"
#include "service/core/json.h"
#include "service/core/room_version.h"
#include "service/core/server_name.h"
#include "service/core/x_matrix.h"

namespace keyverifier::api {
namespace {

absl::Status Field(absl::string_view field, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

v1::Reason ToProto(core::Reason r) {
  switch (r) {
    case core::Reason::kOk: return v1::OK;
    case core::Reason::kContentHashMismatch: return v1::CONTENT_HASH_MISMATCH;
    case core::Reason::kMissingSignature: return v1::MISSING_SIGNATURE;
    case core::Reason::kUnknownKey: return v1::UNKNOWN_KEY;
    case core::Reason::kKeyNotValid: return v1::KEY_NOT_VALID;
    case core::Reason::kBadSignature: return v1::BAD_SIGNATURE;
    case core::Reason::kMalformedSignature: return v1::MALFORMED_SIGNATURE;
    case core::Reason::kDestinationMismatch: return v1::DESTINATION_MISMATCH;
  }
  return v1::REASON_UNSPECIFIED;
}

v1::EventVerdict::Outcome ToProto(core::EventVerdict::Outcome o) {
  switch (o) {
    case core::EventVerdict::Outcome::kValid: return v1::EventVerdict::VALID;
    case core::EventVerdict::Outcome::kValidButRedacted:
      return v1::EventVerdict::VALID_BUT_REDACTED;
    case core::EventVerdict::Outcome::kInvalid: return v1::EventVerdict::INVALID;
  }
  return v1::EventVerdict::OUTCOME_UNSPECIFIED;
}

void ToProto(const core::VerifyKey& k, v1::VerifyKey* out) {
  out->set_key_id(k.key_id);
  out->set_public_key(std::string(core::AsStringView(k.public_key)));
  out->set_valid_until_ts(k.valid_until_ts.value_or(0));
  out->set_expired_ts(k.expired_ts.value_or(0));
}

// The ed25519 key ids `server` signed `event` with: what to ask the keyring for.
std::vector<std::string> SigningKeyIds(const core::PreparedEvent& event,
                                       absl::string_view server) {
  std::vector<std::string> ids;
  const core::Value* mine = event.signatures.Find(server);
  if (mine != nullptr && mine->is_object()) {
    for (const auto& [key_id, sig] : mine->members()) {
      if (core::KeyAlgorithm(key_id) == "ed25519") ids.push_back(key_id);
    }
  }
  return ids;
}

}  // namespace

// Keys already obtained during one call, so a batch of events from the same
// servers asks the keyring once per server rather than once per event. Every
// answer stays alive for the whole call: events prepared earlier keep
// pointing at the answer they were prepared with when a later event needs a
// newer one.
class Verifier::KeyMemo {
 public:
  // The latest remembered keys of `query.server_name` if they answer `query`.
  const std::vector<core::VerifyKey>* Find(const keyring::KeyQuery& query) const {
    auto it = latest_.find(query.server_name);
    if (it == latest_.end()) return nullptr;
    // Otherwise the keyring may know a fresher answer.
    return keyring::KeysAnswer(*it->second, query,
                               [](const core::VerifyKey& k) -> const core::VerifyKey& { return k; })
               ? it->second
               : nullptr;
  }
  const std::vector<core::VerifyKey>& Put(const std::string& server,
                                          std::vector<core::VerifyKey> keys) {
    answers_.push_back(std::move(keys));  // a deque: earlier answers stay put
    latest_[server] = &answers_.back();
    return answers_.back();
  }

 private:
  std::deque<std::vector<core::VerifyKey>> answers_;
  std::map<std::string, const std::vector<core::VerifyKey>*, std::less<>> latest_;
};

absl::StatusOr<v1::VerifyServerKeysResponse> Verifier::VerifyServerKeys(
    const v1::VerifyServerKeysRequest& request, absl::Time deadline) {
  return ServerKeys(request, deadline, false, nullptr);
}

std::optional<absl::StatusOr<v1::VerifyServerKeysResponse>> Verifier::TryVerifyServerKeys(
    const v1::VerifyServerKeysRequest& request) {
  bool slow = false;
  absl::StatusOr<v1::VerifyServerKeysResponse> r =
      ServerKeys(request, absl::InfiniteFuture(), true, &slow);
  if (slow) return std::nullopt;
  return r;
}

std::optional<absl::StatusOr<v1::EventVerdict>> Verifier::TryVerifyEventSignature(
    const v1::VerifyEventSignatureRequest& request) {
  KeyMemo memo;
  bool slow = false;
  absl::StatusOr<v1::EventVerdict> r =
      VerifyEvent(request, absl::InfiniteFuture(), memo, true, &slow);
  if (slow) return std::nullopt;
  return r;
}

absl::StatusOr<keyring::KeyResult> Verifier::Lookup(const keyring::KeyQuery& query,
                                                    absl::Time deadline, bool memory_only,
                                                    bool* slow) {
  if (!memory_only) return keys_.GetKeys(query, deadline);
  std::optional<keyring::KeyResult> r = keys_.TryGetKeysFromMemory(query);
  if (r) return *std::move(r);
  *slow = true;
  return absl::UnavailableError("not in memory");
}

absl::StatusOr<v1::VerifyServerKeysResponse> Verifier::ServerKeys(
    const v1::VerifyServerKeysRequest& request, absl::Time deadline, bool memory_only,
    bool* slow) {
  if (absl::Status s = core::ParseServerName(request.server_name()).status();
      !s.ok()) {
    return Field("server_name", s);
  }
  keyring::KeyQuery query;
  query.server_name = request.server_name();
  query.key_ids.assign(request.key_ids().begin(), request.key_ids().end());
  query.minimum_valid_until_ts = request.minimum_valid_until_ts();
  absl::StatusOr<keyring::KeyResult> keys = Lookup(query, deadline, memory_only, slow);
  if (!keys.ok()) return keys.status();
  v1::VerifyServerKeysResponse out;
  out.set_server_name(keys->server_name);
  auto wanted = [&](const core::VerifyKey& k) {
    return query.key_ids.empty() ||
           std::find(query.key_ids.begin(), query.key_ids.end(), k.key_id) !=
               query.key_ids.end();
  };
  for (const auto& k : keys->verify_keys) {
    if (wanted(k)) ToProto(k, out.add_verify_keys());
  }
  for (const auto& k : keys->old_verify_keys) {
    if (wanted(k)) ToProto(k, out.add_old_verify_keys());
  }
  switch (keys->source.kind) {
    case keyring::KeySource::Kind::kCache:
      out.mutable_source()->set_kind(v1::KeySource::CACHE);
      break;
    case keyring::KeySource::Kind::kOrigin:
      out.mutable_source()->set_kind(v1::KeySource::ORIGIN);
      break;
    case keyring::KeySource::Kind::kNotary:
      out.mutable_source()->set_kind(v1::KeySource::NOTARY);
      out.mutable_source()->set_notary(keys->source.notary);
      break;
  }
  for (const std::string& raw : keys->raw_json) out.add_raw_json(raw);
  return out;
}

absl::StatusOr<v1::EventVerdict> Verifier::VerifyEventSignature(
    const v1::VerifyEventSignatureRequest& request, absl::Time deadline) {
  KeyMemo memo;
  return VerifyEvent(request, deadline, memo);
}

// An event parsed and hashed, with the keys of the servers that must sign.
struct Verifier::Pending {
  core::PreparedEvent event;
  const core::RoomVersion* room = nullptr;
  std::map<std::string, const std::vector<core::VerifyKey>*, std::less<>> keys;
};

absl::StatusOr<Verifier::Pending> Verifier::Prepare(
    const v1::VerifyEventSignatureRequest& request, absl::Time deadline, KeyMemo& memo,
    bool memory_only, bool* slow) {
  absl::StatusOr<const core::RoomVersion*> room =
      core::LookupRoomVersion(request.room_version());
  if (!room.ok()) return Field("room_version", room.status());
  if (request.event_json().size() > limits_.max_event_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event_json: ", request.event_json().size(), " bytes; the limit is ",
        limits_.max_event_bytes));
  }
  absl::StatusOr<core::PreparedEvent> event =
      core::PrepareEvent(request.event_json(), **room);
  if (!event.ok()) return Field("event_json", event.status());
  Pending p;
  p.event = *std::move(event);
  p.room = *room;

  // Keys for every server that must sign; a key valid long enough for the
  // event where the room version enforces validity.
  for (const std::string& server : p.event.required_servers) {
    keyring::KeyQuery query;
    query.server_name = server;
    query.key_ids = SigningKeyIds(p.event, server);
    if (query.key_ids.empty()) continue;  // the verdict says missing_signature
    if (p.room->enforce_key_validity) {
      query.minimum_valid_until_ts = p.event.origin_server_ts;
    }
    query.include_raw_json = false;
    if (const std::vector<core::VerifyKey>* known = memo.Find(query)) {
      p.keys[server] = known;
      continue;
    }
    absl::StatusOr<keyring::KeyResult> result = Lookup(query, deadline, memory_only, slow);
    if (!result.ok()) {
      if (memory_only) return result.status();
      return absl::Status(result.status().code(),
                          absl::StrCat("keys of ", server, ": ",
                                       result.status().message()));
    }
    p.keys[server] = &memo.Put(server, std::move(*result).TakeAllKeys());
  }
  return p;
}

absl::StatusOr<v1::EventVerdict> Verifier::Finish(const Pending& p) {
  core::KeyLookup lookup = [&p](absl::string_view server) {
    auto it = p.keys.find(server);
    return it == p.keys.end() ? absl::Span<const core::VerifyKey>()
                              : absl::Span<const core::VerifyKey>(*it->second);
  };
  core::EventVerdict verdict = core::VerifyPreparedEvent(p.event, lookup, clock_.NowMs());
  observer_.OnVerdict(core::OutcomeName(verdict.outcome),
                      core::ReasonName(verdict.reason));

  v1::EventVerdict out;
  out.set_outcome(ToProto(verdict.outcome));
  out.set_reason(ToProto(verdict.reason));
  out.set_message(verdict.message);
  out.set_event_id(p.event.event_id);
  for (const auto& c : verdict.checked) {
    v1::EventVerdict::Checked* checked = out.add_checked();
    checked->set_server_name(c.server);
    for (const auto& id : c.key_ids) checked->add_key_ids(id);
  }
  if (verdict.outcome == core::EventVerdict::Outcome::kValidButRedacted) {
    absl::StatusOr<core::Value> event = core::RedactedEvent(p.event);
    if (!event.ok()) return event.status();
    absl::StatusOr<std::string> redacted =
        core::CanonicalJson(*event, p.room->number_policy);
    if (!redacted.ok()) return redacted.status();
    out.set_redacted_event(*std::move(redacted));
  }
  return out;
}

absl::StatusOr<v1::EventVerdict> Verifier::VerifyEvent(
    const v1::VerifyEventSignatureRequest& request, absl::Time deadline,
    KeyMemo& memo, bool memory_only, bool* slow) {
  absl::StatusOr<Pending> p = Prepare(request, deadline, memo, memory_only, slow);
  if (!p.ok()) return p.status();
  return Finish(*p);
}

absl::StatusOr<v1::VerifyEventsResponse> Verifier::VerifyEvents(
    const v1::VerifyEventsRequest& request, absl::Time deadline) {
  if (static_cast<size_t>(request.events_size()) > limits_.max_events_per_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("events: ", request.events_size(), " events; the limit is ",
                     limits_.max_events_per_batch, " per call"));
  }
  KeyMemo memo;
  // In two passes: every event's JSON and hash work (and key lookups) first,
  // then every signature check. Each pass keeps its own code in the
  // instruction cache; alternating them per event made each ed25519 verify
  // measurably slower.
  std::vector<absl::StatusOr<Pending>> pending;
  pending.reserve(static_cast<size_t>(request.events_size()));
  for (const v1::VerifyEventSignatureRequest& event : request.events()) {
    pending.push_back(Prepare(event, deadline, memo, false, nullptr));
  }
  v1::VerifyEventsResponse out;
  for (int i = 0; i < request.events_size(); ++i) {
    v1::EventResult* result = out.add_results();
    absl::StatusOr<v1::EventVerdict> v =
        pending[i].ok() ? Finish(*pending[i]) : pending[i].status();
    if (v.ok()) {
      *result->mutable_verdict() = *std::move(v);
    } else {
      result->mutable_error()->set_code(static_cast<int>(v.status().code()));
      result->mutable_error()->set_message(
          absl::StrCat("events[", i, "].", v.status().message()));
    }
  }
  return out;
}

absl::StatusOr<v1::VerifyRequestAuthResponse> Verifier::VerifyRequestAuth(
    const v1::VerifyRequestAuthRequest& request, absl::Time deadline) {
  if (request.authorization().empty()) {
    return absl::InvalidArgumentError("authorization: no header given");
  }
  if (absl::Status s = core::ParseServerName(request.destination()).status();
      !s.ok()) {
    return Field("destination", s);
  }
  core::FederationRequest fed;
  fed.method = request.method();
  fed.uri = request.uri();
  fed.destination = request.destination();
  fed.body = request.body();

  v1::VerifyRequestAuthResponse out;
  absl::Status last_error;
  bool have_verdict = false;
  for (int i = 0; i < request.authorization_size(); ++i) {
    absl::StatusOr<core::XMatrixAuthorization> auth =
        core::ParseXMatrixAuthorization(request.authorization(i));
    if (!auth.ok()) {
      last_error = Field(absl::StrCat("authorization[", i, "]"), auth.status());
      continue;
    }
    // The origin names whose keys are looked up: it must be a server name.
    if (absl::Status s = core::ParseServerName(auth->origin).status(); !s.ok()) {
      last_error = Field(absl::StrCat("authorization[", i, "].origin"), s);
      continue;
    }
    keyring::KeyQuery query;
    query.server_name = auth->origin;
    query.key_ids = {auth->key_id};
    query.minimum_valid_until_ts = clock_.NowMs();
    std::vector<core::VerifyKey> keys;
    if (!auth->destination || *auth->destination == fed.destination) {
      absl::StatusOr<keyring::KeyResult> result = keys_.GetKeys(query, deadline);
      if (!result.ok()) {
        // A body that is not JSON is the caller's error, whatever the keys
        // (checked here, off the common path, rather than parsed twice).
        if (absl::Status body = core::RequestSigningBytes(fed, auth->origin).status();
            !body.ok()) {
          return Field("body", body);
        }
        last_error = absl::Status(result.status().code(),
                                  absl::StrCat("keys of ", auth->origin, ": ",
                                               result.status().message()));
        continue;
      }
      keys = result->AllKeys();
    }
    absl::StatusOr<core::RequestVerdict> v =
        core::VerifyFederationRequest(*auth, fed, keys, clock_.NowMs());
    if (!v.ok()) return Field("body", v.status());
    have_verdict = true;
    observer_.OnVerdict(v->ok() ? "valid" : "invalid", core::ReasonName(v->reason));
    out.set_authenticated(v->ok());
    out.set_origin(v->origin);
    out.set_reason(ToProto(v->reason));
    out.set_message(v->message);
    if (v->ok()) break;
  }
  if (!have_verdict) return last_error;
  return out;
}

absl::StatusOr<v1::CheckCertificateResponse> Verifier::CheckCertificate(
    const v1::CheckCertificateRequest& request, absl::Time deadline) {
  if (certificates_ == nullptr) {
    return absl::FailedPreconditionError("CheckCertificate: no certificate policy configured");
  }
  if (absl::Status s = core::ParseServerName(request.server_name()).status(); !s.ok()) {
    return Field("server_name", s);
  }
  const absl::Time at =
      request.at_ts() > 0 ? absl::FromUnixMillis(request.at_ts()) : clock_.Now();
  absl::StatusOr<tls::CertificateCheck> check;
  switch (request.chain_source_case()) {
    case v1::CheckCertificateRequest::kPemChain:
      check = certificates_->CheckOffered(request.server_name(), {request.pem_chain()}, at);
      break;
    case v1::CheckCertificateRequest::kDerChain: {
      std::vector<std::string> der(request.der_chain().certificates().begin(),
                                   request.der_chain().certificates().end());
      if (der.empty()) return absl::InvalidArgumentError("der_chain: no certificates");
      check = certificates_->CheckOffered(request.server_name(), der, at);
      break;
    }
    case v1::CheckCertificateRequest::kConnect:
      if (request.port() > 65535) {
        return absl::InvalidArgumentError(
            absl::StrCat("port: ", request.port(), " is not a port"));
      }
      check = certificates_->CheckLive(request.server_name(),
                                       static_cast<uint16_t>(request.port()), at, deadline);
      break;
    default:
      return absl::InvalidArgumentError(
          "chain_source: give pem_chain, der_chain or connect");
  }
  if (!check.ok()) return check.status();
  const tls::Verdict& v = check->verdict;
  v1::CheckCertificateResponse out;
  out.set_valid(v.valid);
  for (const tls::Finding& f : v.reasons) {
    out.add_reasons(absl::StrCat(tls::ReasonName(f.reason), ": ", f.message));
  }
  for (const tls::Finding& f : v.warnings) {
    out.add_warnings(absl::StrCat(tls::ReasonName(f.reason), ": ", f.message));
  }
  for (const tls::CertificateInfo& c : v.presented) {
    v1::CertificateInfo* info = out.add_chain();
    info->set_subject(c.subject);
    info->set_issuer(c.issuer);
    for (const std::string& n : c.dns_names) info->add_names(n);
    for (const std::string& n : c.ip_addresses) info->add_names(n);
    info->set_not_before_ts(absl::ToUnixMillis(c.not_before));
    info->set_not_after_ts(absl::ToUnixMillis(c.not_after));
    info->set_sha256_fingerprint(absl::HexStringToBytes(c.sha256));
  }
  if (v.rule != tls::AppliedRule::kNone && v.rule != tls::AppliedRule::kChainVerified) {
    out.set_applied_rule(v.rule_detail.empty()
                             ? std::string(tls::AppliedRuleName(v.rule))
                             : absl::StrCat(tls::AppliedRuleName(v.rule), ":", v.rule_detail));
  }
  out.set_checked_name(check->checked_name);
  out.set_endpoint(check->endpoint);
  return out;
}

}  // namespace keyverifier::api
