#include "service/api/verifier.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "service/core/canonical_json.h"
#include "service/core/event_verifier.h"
#include "service/core/json_value.h"
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
  if (!k.expired_ts) out->set_usable_until_ts(core::UsableUntil(k).value_or(0));
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
    auto it = latest_.find(query.server_name.view());
    if (it == latest_.end()) return nullptr;
    // Otherwise the keyring may know a fresher answer.
    return keyring::KeysAnswer(
               *it->second, query,
               [](const core::VerifyKey& k) -> const core::VerifyKey& { return k; },
               [](const core::VerifyKey& k) { return k.confirmed_ts; })
               ? it->second
               : nullptr;
  }
  const std::vector<core::VerifyKey>& Put(const core::ServerName& server,
                                          std::vector<core::VerifyKey> keys) {
    answers_.push_back(std::move(keys));  // a deque: earlier answers stay put
    latest_[server.str()] = &answers_.back();
    return answers_.back();
  }

 private:
  std::deque<std::vector<core::VerifyKey>> answers_;
  std::map<std::string, const std::vector<core::VerifyKey>*, std::less<>> latest_;
};

// An event parsed and hashed, with the keys of the servers that must sign.
struct Verifier::Pending {
  core::PreparedEvent event;
  const core::RoomVersion* room = nullptr;
  std::map<std::string, const std::vector<core::VerifyKey>*, std::less<>> keys;
};

namespace {
// The server-keys query a request asks for.
absl::StatusOr<keyring::KeyQuery> KeysQueryOf(const v1::VerifyServerKeysRequest& request) {
  absl::StatusOr<core::ServerName> name = core::ServerName::Parse(request.server_name());
  if (!name.ok()) return Field("server_name", name.status());
  keyring::KeyQuery query(*std::move(name));
  query.key_ids.assign(request.key_ids().begin(), request.key_ids().end());
  query.minimum_valid_until_ts = request.minimum_valid_until_ts();
  return query;
}
}  // namespace

void Verifier::OnCpu(async::Task task) {
  // Shared, so that a pool refusing it (stopping) does not take it along:
  // without a pool (tests, tools) or then, it runs here.
  auto shared = std::make_shared<async::Task>(std::move(task));
  if (cpu_ == nullptr || !cpu_->Post([shared] { (*shared)(); })) (*shared)();
}

void Verifier::VerifyServerKeys(const v1::VerifyServerKeysRequest& request,
                                absl::Time deadline, Reply<v1::VerifyServerKeysResponse> done) {
  absl::StatusOr<keyring::KeyQuery> query = KeysQueryOf(request);
  if (!query.ok()) return done(query.status());
  keys_.GetKeys(*query, deadline,
                [this, query = *query, done = std::move(done)](
                    absl::StatusOr<keyring::KeyResult> keys) mutable {
                  done(ToResponse(query, std::move(keys)));
                });
}

std::optional<absl::StatusOr<v1::VerifyServerKeysResponse>> Verifier::TryVerifyServerKeys(
    const v1::VerifyServerKeysRequest& request) {
  absl::StatusOr<keyring::KeyQuery> query = KeysQueryOf(request);
  if (!query.ok()) return absl::StatusOr<v1::VerifyServerKeysResponse>(query.status());
  std::optional<keyring::KeyResult> keys = keys_.TryGetKeysFromMemory(*query);
  if (!keys) return std::nullopt;
  return ToResponse(*query, *std::move(keys));
}

std::optional<absl::StatusOr<v1::EventVerdict>> Verifier::TryVerifyEventSignature(
    const v1::VerifyEventSignatureRequest& request) {
  KeyMemo memo;
  bool slow = false;
  absl::StatusOr<Pending> p = Prepare(request, memo, nullptr, &slow);
  if (slow) return std::nullopt;
  if (!p.ok()) return absl::StatusOr<v1::EventVerdict>(p.status());
  return Finish(*p);
}

absl::Status Verifier::ForCaller(absl::string_view context, const absl::Status& error) {
  absl::string_view what;
  switch (error.code()) {
    case absl::StatusCode::kUnavailable: what = "could not be obtained"; break;
    case absl::StatusCode::kPermissionDenied: what = "may not be fetched (outbound rules)"; break;
    case absl::StatusCode::kInternal: what = "failed with an internal error"; break;
    case absl::StatusCode::kDataLoss: what = "failed: the key store is damaged"; break;
    case absl::StatusCode::kUnknown: what = "failed with an unexpected error"; break;
    default:
      return absl::Status(error.code(), absl::StrCat(context, ": ", error.message()));
  }
  thread_local absl::BitGen bits;
  const std::string id = absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(bits), absl::kZeroPad16));
  observer_.OnErrorDetail(id, absl::StrCat(context, ": ", error.message()));
  return absl::Status(error.code(),
                      absl::StrCat(context, " ", what, "; details in the service log, error id ", id));
}

absl::StatusOr<v1::VerifyServerKeysResponse> Verifier::ToResponse(
    const keyring::KeyQuery& query, absl::StatusOr<keyring::KeyResult> keys) {
  if (!keys.ok()) {
    return ForCaller(absl::StrCat("keys of ", query.server_name.str()), keys.status());
  }
  v1::VerifyServerKeysResponse out;
  out.set_server_name(keys->server_name);
  auto wanted = [&](const core::VerifyKey& k) {
    return query.key_ids.empty() ||
           std::find(query.key_ids.begin(), query.key_ids.end(), k.key_id) !=
               query.key_ids.end();
  };
  // Banned keys are never handed out; asked for by id, the lookup fails
  // saying so.
  for (const auto* list : {&keys->verify_keys, &keys->old_verify_keys}) {
    for (const core::VerifyKey& k : *list) {
      if (k.banned && !query.key_ids.empty() && wanted(k)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "key ", k.key_id, " of ", keys->server_name, " is banned by the operator"));
      }
    }
  }
  for (const auto& k : keys->verify_keys) {
    if (wanted(k) && !k.banned) ToProto(k, out.add_verify_keys());
  }
  for (const auto& k : keys->old_verify_keys) {
    if (wanted(k) && !k.banned) ToProto(k, out.add_old_verify_keys());
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
  for (const store::StoredResponse& r : keys->responses) out.add_raw_json(r.raw_json);
  return out;
}


absl::StatusOr<Verifier::Pending> Verifier::Prepare(
    const v1::VerifyEventSignatureRequest& request, KeyMemo& memo,
    std::vector<keyring::KeyQuery>* missing, bool* slow) {
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
  for (const core::ServerName& server : p.event.required_servers) {
    keyring::KeyQuery query(server);
    query.key_ids = SigningKeyIds(p.event, server.view());
    if (query.key_ids.empty()) continue;  // the verdict says missing_signature
    if (p.room->enforce_key_validity) {
      query.minimum_valid_until_ts = p.event.origin_server_ts;
    }
    query.include_raw_json = false;
    if (const std::vector<core::VerifyKey>* known = memo.Find(query)) {
      p.keys[server.str()] = known;
      continue;
    }
    if (std::optional<keyring::KeyResult> r = keys_.TryGetKeysFromMemory(query)) {
      p.keys[server.str()] = &memo.Put(server, std::move(*r).TakeAllKeys());
      continue;
    }
    if (missing == nullptr) {
      *slow = true;
      return absl::UnavailableError("not in memory");
    }
    missing->push_back(std::move(query));
  }
  return p;
}

absl::StatusOr<v1::EventVerdict> Verifier::Finish(const Pending& p) {
  core::KeyLookup lookup = [&p](absl::string_view server) {
    auto it = p.keys.find(server);
    return it == p.keys.end() ? absl::Span<const core::VerifyKey>()
                              : absl::Span<const core::VerifyKey>(*it->second);
  };
  core::EventVerdict verdict = core::VerifyPreparedEvent(p.event, lookup);
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

// A batch between its key lookups and its signature checks.
struct Verifier::Batch {
  KeyMemo memo;
  std::vector<absl::StatusOr<Pending>> pending;
  // The queries (servers) each event lacks keys for, in the event's order.
  std::vector<std::vector<size_t>> lacking;
  std::vector<core::ServerName> servers;  // per query
  absl::AnyInvocable<void(std::vector<absl::StatusOr<v1::EventVerdict>>)> done;

  // Once the lookups are out. A query's keys (or why there are none) are
  // set before any event lacking them is ready, and read only after.
  absl::Mutex mu;
  std::vector<const std::vector<core::VerifyKey>*> keys_of;  // per query
  std::vector<absl::Status> status_of;                       // per query
  std::vector<std::vector<size_t>> events_of;                // per query
  std::vector<size_t> waiting ABSL_GUARDED_BY(mu);  // per event: queries unanswered
  std::vector<size_t> ready ABSL_GUARDED_BY(mu);    // events not handed on yet
  size_t unanswered ABSL_GUARDED_BY(mu) = 0;        // queries
  size_t unchecked ABSL_GUARDED_BY(mu) = 0;         // events
  std::vector<absl::StatusOr<v1::EventVerdict>> out ABSL_GUARDED_BY(mu);
};

namespace {
// Events checked per task once their keys are in: the signature checks of
// one batch run in runs like this (each pass keeps its own code in the
// instruction cache; alternating parse and verify per event made each
// ed25519 verify measurably slower), and the first servers' events are
// checked while the others' keys are still being fetched.
constexpr size_t kCheckSlice = 64;
}  // namespace

void Verifier::CheckReady(std::shared_ptr<Batch> batch, std::vector<size_t> events) {
  std::vector<absl::StatusOr<v1::EventVerdict>> verdicts;
  verdicts.reserve(events.size());
  for (size_t e : events) {
    absl::StatusOr<Pending>& p = batch->pending[e];
    for (size_t q : batch->lacking[e]) {
      if (!p.ok()) break;
      if (const absl::Status& s = batch->status_of[q]; !s.ok()) {
        p = ForCaller(absl::StrCat("keys of ", batch->servers[q].str()), s);
        break;
      }
      p->keys[batch->servers[q].str()] = batch->keys_of[q];
    }
    verdicts.push_back(p.ok() ? Finish(*p) : p.status());
  }
  bool last = false;
  {
    absl::MutexLock lock(&batch->mu);
    for (size_t i = 0; i < events.size(); ++i) batch->out[events[i]] = std::move(verdicts[i]);
    batch->unchecked -= events.size();
    last = batch->unchecked == 0;
  }
  if (last) {
    batch->done(std::move(batch->out));
  }
}

void Verifier::VerifyBatch(
    std::vector<const v1::VerifyEventSignatureRequest*> events, absl::Time deadline,
    absl::AnyInvocable<void(std::vector<absl::StatusOr<v1::EventVerdict>>)> done) {
  auto batch = std::make_shared<Batch>();
  batch->done = std::move(done);
  // Pass 1: every event's JSON and hash work, and the keys memory has.
  std::vector<keyring::KeyQuery> queries;  // one per server lacking keys
  std::map<core::ServerName, size_t> query_of;
  batch->pending.reserve(events.size());
  for (const v1::VerifyEventSignatureRequest* event : events) {
    std::vector<keyring::KeyQuery> missing;
    batch->pending.push_back(Prepare(*event, batch->memo, &missing, nullptr));
    batch->lacking.emplace_back();
    for (keyring::KeyQuery& q : missing) {
      auto [it, inserted] = query_of.try_emplace(q.server_name, queries.size());
      batch->lacking.back().push_back(it->second);
      if (inserted) {
        queries.push_back(std::move(q));
        continue;
      }
      keyring::KeyQuery& merged = queries[it->second];
      for (std::string& id : q.key_ids) {
        if (std::find(merged.key_ids.begin(), merged.key_ids.end(), id) == merged.key_ids.end()) {
          merged.key_ids.push_back(std::move(id));
        }
      }
      merged.minimum_valid_until_ts =
          std::max(merged.minimum_valid_until_ts, q.minimum_valid_until_ts);
    }
  }
  const size_t n = batch->pending.size();
  if (queries.empty()) {
    // Pass 2 at once, here: every key was in memory.
    std::vector<absl::StatusOr<v1::EventVerdict>> out;
    out.reserve(n);
    for (absl::StatusOr<Pending>& p : batch->pending) out.push_back(p.ok() ? Finish(*p) : p.status());
    return batch->done(std::move(out));
  }
  // Pass 2 as the keys come in: an event is checked once every server it
  // lacked keys for has answered, kCheckSlice events a task.
  batch->keys_of.assign(queries.size(), nullptr);
  batch->status_of.assign(queries.size(), absl::OkStatus());
  batch->events_of.resize(queries.size());
  for (const keyring::KeyQuery& q : queries) batch->servers.push_back(q.server_name);
  std::vector<size_t> ready_now;
  {
    absl::MutexLock lock(&batch->mu);
    batch->out.assign(n, absl::InternalError("not verified"));
    batch->waiting.resize(n);
    batch->unanswered = queries.size();
    batch->unchecked = n;
    for (size_t e = 0; e < n; ++e) {
      batch->waiting[e] = batch->lacking[e].size();
      for (size_t q : batch->lacking[e]) batch->events_of[q].push_back(e);
      if (batch->waiting[e] == 0) ready_now.push_back(e);
    }
  }
  // Those that lack nothing need not wait.
  for (size_t i = 0; i < ready_now.size(); i += kCheckSlice) {
    std::vector<size_t> slice(ready_now.begin() + i,
                              ready_now.begin() + std::min(ready_now.size(), i + kCheckSlice));
    OnCpu([this, batch, slice = std::move(slice)]() mutable { CheckReady(batch, std::move(slice)); });
  }
  keys_.GetKeysEach(
      std::move(queries), deadline,
      std::make_shared<const keyring::KeyRing::EachDone>(
          [this, batch](size_t q, absl::StatusOr<keyring::KeyResult> r) {
            std::vector<size_t> slice;
            {
              absl::MutexLock lock(&batch->mu);
              if (r.ok()) {
                batch->keys_of[q] = &batch->memo.Put(batch->servers[q], std::move(*r).TakeAllKeys());
              } else {
                batch->status_of[q] = r.status();
              }
              for (size_t e : batch->events_of[q]) {
                if (--batch->waiting[e] == 0) batch->ready.push_back(e);
              }
              --batch->unanswered;
              if (batch->ready.size() >= kCheckSlice ||
                  (batch->unanswered == 0 && !batch->ready.empty())) {
                slice.swap(batch->ready);
              }
            }
            if (slice.empty()) return;
            OnCpu([this, batch, slice = std::move(slice)]() mutable {
              CheckReady(batch, std::move(slice));
            });
          }));
}

void Verifier::VerifyEventSignature(const v1::VerifyEventSignatureRequest& request,
                                    absl::Time deadline, Reply<v1::EventVerdict> done) {
  VerifyBatch({&request}, deadline,
              [done = std::move(done)](std::vector<absl::StatusOr<v1::EventVerdict>> r) mutable {
                done(std::move(r[0]));
              });
}

void Verifier::VerifyEvents(const v1::VerifyEventsRequest& request, absl::Time deadline,
                            Reply<v1::VerifyEventsResponse> done) {
  if (static_cast<size_t>(request.events_size()) > limits_.max_events_per_batch) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("events: ", request.events_size(), " events; the limit is ",
                     limits_.max_events_per_batch, " per call")));
  }
  std::vector<const v1::VerifyEventSignatureRequest*> events;
  events.reserve(static_cast<size_t>(request.events_size()));
  for (const v1::VerifyEventSignatureRequest& e : request.events()) events.push_back(&e);
  VerifyBatch(std::move(events), deadline,
              [done = std::move(done)](std::vector<absl::StatusOr<v1::EventVerdict>> verdicts) mutable {
                v1::VerifyEventsResponse out;
                for (size_t i = 0; i < verdicts.size(); ++i) {
                  v1::EventResult* result = out.add_results();
                  absl::StatusOr<v1::EventVerdict>& v = verdicts[i];
                  if (v.ok()) {
                    *result->mutable_verdict() = *std::move(v);
                  } else {
                    result->mutable_error()->set_code(static_cast<int>(v.status().code()));
                    result->mutable_error()->set_message(
                        absl::StrCat("events[", i, "].", v.status().message()));
                  }
                }
                done(std::move(out));
              });
}

// One Authorization header, parsed once for the lookup and the verdict: the
// header, and its origin as a server name.
struct Verifier::AuthHeader {
  explicit AuthHeader(absl::string_view header)
      : auth(core::ParseXMatrixAuthorization(header)),
        origin(auth.ok() ? core::ServerName::Parse(auth->origin)
                         : absl::StatusOr<core::ServerName>(auth.status())) {}
  absl::StatusOr<core::XMatrixAuthorization> auth;
  absl::StatusOr<core::ServerName> origin;
};

std::optional<keyring::KeyQuery> Verifier::AuthQuery(const AuthHeader& header,
                                                     absl::string_view destination,
                                                     int64_t now_ms) {
  if (!header.auth.ok() || !header.origin.ok()) return std::nullopt;
  const core::XMatrixAuthorization& auth = *header.auth;
  if (auth.destination && *auth.destination != destination) return std::nullopt;
  keyring::KeyQuery query(*header.origin);
  query.key_ids = {auth.key_id};
  query.minimum_valid_until_ts = now_ms;
  query.include_raw_json = false;
  return query;
}

void Verifier::VerifyRequestAuth(const v1::VerifyRequestAuthRequest& request,
                                 absl::Time deadline,
                                 Reply<v1::VerifyRequestAuthResponse> done) {
  if (request.authorization().empty()) {
    return done(absl::InvalidArgumentError("authorization: no header given"));
  }
  if (absl::Status s = core::ServerName::Parse(request.destination()).status(); !s.ok()) {
    return done(Field("destination", s));
  }
  // Every header's keys looked up together; the headers are then judged in
  // order.
  const int64_t now_ms = clock_.NowMs();
  std::vector<AuthHeader> headers;
  headers.reserve(static_cast<size_t>(request.authorization_size()));
  for (const std::string& header : request.authorization()) headers.emplace_back(header);
  std::vector<keyring::KeyQuery> queries;
  std::vector<int> header_of;
  for (int i = 0; i < request.authorization_size(); ++i) {
    if (std::optional<keyring::KeyQuery> q =
            AuthQuery(headers[static_cast<size_t>(i)], request.destination(), now_ms)) {
      queries.push_back(*std::move(q));
      header_of.push_back(i);
    }
  }
  keys_.GetKeysMany(
      std::move(queries), deadline,
      [this, &request, headers = std::move(headers), header_of = std::move(header_of),
       done = std::move(done)](
          std::vector<absl::StatusOr<keyring::KeyResult>> results) mutable {
        std::vector<absl::StatusOr<keyring::KeyResult>> keys(
            static_cast<size_t>(request.authorization_size()),
            absl::NotFoundError("no lookup"));
        for (size_t j = 0; j < results.size(); ++j) {
          keys[static_cast<size_t>(header_of[j])] = std::move(results[j]);
        }
        done(AuthVerdict(request, headers, keys));
      });
}

absl::StatusOr<v1::VerifyRequestAuthResponse> Verifier::AuthVerdict(
    const v1::VerifyRequestAuthRequest& request, const std::vector<AuthHeader>& headers,
    const std::vector<absl::StatusOr<keyring::KeyResult>>& looked_up) {
  core::FederationRequest fed;
  fed.method = request.method();
  fed.uri = request.uri();
  fed.destination = request.destination();
  fed.body = request.body();

  v1::VerifyRequestAuthResponse out;
  absl::Status last_error;
  bool have_verdict = false;
  for (int i = 0; i < request.authorization_size(); ++i) {
    const AuthHeader& header = headers[static_cast<size_t>(i)];
    const absl::StatusOr<core::XMatrixAuthorization>& auth = header.auth;
    if (!auth.ok()) {
      last_error = Field(absl::StrCat("authorization[", i, "]"), auth.status());
      continue;
    }
    // The origin names whose keys are looked up: it must be a server name.
    if (!header.origin.ok()) {
      last_error = Field(absl::StrCat("authorization[", i, "].origin"), header.origin.status());
      continue;
    }
    std::vector<core::VerifyKey> keys;
    if (!auth->destination || *auth->destination == fed.destination) {
      const absl::StatusOr<keyring::KeyResult>& result = looked_up[static_cast<size_t>(i)];
      if (!result.ok()) {
        // A body that is not JSON is the caller's error, whatever the keys
        // (checked here, off the common path, rather than parsed twice).
        if (absl::Status body = core::RequestSigningBytes(fed, auth->origin).status();
            !body.ok()) {
          return Field("body", body);
        }
        last_error = ForCaller(absl::StrCat("keys of ", auth->origin), result.status());
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

void Verifier::CheckCertificate(const v1::CheckCertificateRequest& request,
                                absl::Time deadline,
                                Reply<v1::CheckCertificateResponse> done) {
  if (certificates_ == nullptr) {
    return done(
        absl::FailedPreconditionError("CheckCertificate: no certificate policy configured"));
  }
  absl::StatusOr<core::ServerName> name = core::ServerName::Parse(request.server_name());
  if (!name.ok()) return done(Field("server_name", name.status()));
  const absl::Time at =
      request.at_ts() > 0 ? absl::FromUnixMillis(request.at_ts()) : clock_.Now();
  switch (request.chain_source_case()) {
    case v1::CheckCertificateRequest::kPemChain:
      return done(CertificateResponse(
          certificates_->CheckOffered(*name, {request.pem_chain()}, at)));
    case v1::CheckCertificateRequest::kDerChain: {
      std::vector<std::string> der(request.der_chain().certificates().begin(),
                                   request.der_chain().certificates().end());
      if (der.empty()) return done(absl::InvalidArgumentError("der_chain: no certificates"));
      return done(CertificateResponse(certificates_->CheckOffered(*name, der, at)));
    }
    case v1::CheckCertificateRequest::kConnect:
      if (request.port() > 65535) {
        return done(absl::InvalidArgumentError(
            absl::StrCat("port: ", request.port(), " is not a port")));
      }
      // The handshake runs on the fetch engine; no thread waits for it.
      return certificates_->CheckLive(
          *name, static_cast<uint16_t>(request.port()), at, deadline,
          [this, done = std::move(done)](absl::StatusOr<tls::CertificateCheck> check) mutable {
            done(CertificateResponse(std::move(check)));
          });
    default:
      return done(absl::InvalidArgumentError("chain_source: give pem_chain, der_chain or connect"));
  }
}

absl::StatusOr<v1::CheckCertificateResponse> Verifier::CertificateResponse(
    absl::StatusOr<tls::CertificateCheck> check) {
  if (!check.ok()) return ForCaller("certificate check", check.status());
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
