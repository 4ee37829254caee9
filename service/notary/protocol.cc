#include "service/notary/protocol.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_name.h"
#include "service/core/signed_json.h"

namespace keyverifier::notary {
namespace {

// The Matrix errcode an error is served with, carried on the status.
constexpr absl::string_view kErrcode = "type.matrix.org/errcode";

absl::Status Tagged(absl::Status s, absl::string_view errcode) {
  s.SetPayload(kErrcode, absl::Cord(errcode));
  return s;
}
absl::Status BadJson(std::string message) {
  return Tagged(absl::InvalidArgumentError(std::move(message)), "M_BAD_JSON");
}

absl::Status BadName(absl::string_view where, absl::string_view name, const absl::Status& why) {
  return Tagged(absl::InvalidArgumentError(absl::StrCat(where, ": \"", name,
                                                       "\" is not a server name: ", why.message())),
                "M_INVALID_PARAM");
}

// Key ids are opaque here (answers carry every key); only their size and
// emptiness are checked, so a hostile query cannot make us keep much.
absl::Status CheckKeyId(absl::string_view where, absl::string_view key_id) {
  if (key_id.empty() || key_id.size() > 255) {
    return Tagged(absl::InvalidArgumentError(
                      absl::StrCat(where, ": key id must be 1 to 255 bytes, got ", key_id.size())),
                  "M_INVALID_PARAM");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ServerQuery>> ParseBatchQuery(absl::string_view body,
                                                         const QueryLimits& limits) {
  absl::StatusOr<core::Value> doc = core::ParseJson(body);
  if (!doc.ok()) {
    return Tagged(absl::InvalidArgumentError(
                      absl::StrCat("request body is not JSON: ", doc.status().message())),
                  "M_NOT_JSON");
  }
  if (!doc->is_object()) return BadJson("request body is not a JSON object");
  const core::Value* server_keys = doc->Find("server_keys");
  if (server_keys == nullptr) return BadJson("server_keys is missing");
  if (!server_keys->is_object()) return BadJson("server_keys is not an object");
  if (server_keys->members().size() > limits.max_servers) {
    return absl::ResourceExhaustedError(absl::StrCat("server_keys names ", server_keys->members().size(),
                                                     " servers; at most ", limits.max_servers,
                                                     " per request"));
  }
  std::vector<ServerQuery> out;
  out.reserve(server_keys->members().size());
  for (const auto& [server, ids] : server_keys->members()) {
    const std::string where = absl::StrCat("server_keys[\"", server, "\"]");
    absl::StatusOr<core::ServerName> name = core::ServerName::Parse(server);
    if (!name.ok()) return BadName("server_keys", server, name.status());
    if (!ids.is_object()) return BadJson(absl::StrCat(where, " is not an object"));
    if (ids.members().size() > limits.max_key_ids) {
      return absl::ResourceExhaustedError(absl::StrCat(where, " names ", ids.members().size(),
                                                       " key ids; at most ", limits.max_key_ids));
    }
    ServerQuery q(*std::move(name));
    for (const auto& [key_id, criteria] : ids.members()) {
      const std::string at = absl::StrCat(where, "[\"", key_id, "\"]");
      if (absl::Status s = CheckKeyId(where, key_id); !s.ok()) return s;
      if (!criteria.is_object()) return BadJson(absl::StrCat(at, " is not an object"));
      q.key_ids.push_back(key_id);
      const core::Value* minimum = criteria.Find("minimum_valid_until_ts");
      if (minimum == nullptr || minimum->is_null()) continue;
      if (!minimum->is_safe_integer() || minimum->int_value() < 0) {
        return BadJson(absl::StrCat(at, ".minimum_valid_until_ts is not a non-negative integer"));
      }
      q.minimum_valid_until_ts = std::max(q.minimum_valid_until_ts.value_or(0), minimum->int_value());
    }
    out.push_back(std::move(q));
  }
  return out;
}

absl::StatusOr<ServerQuery> ParseSingleQuery(absl::string_view server_name,
                                             absl::string_view key_id,
                                             std::optional<absl::string_view> minimum) {
  absl::StatusOr<core::ServerName> name = core::ServerName::Parse(server_name);
  if (!name.ok()) return BadName("serverName", server_name, name.status());
  ServerQuery q(*std::move(name));
  if (!key_id.empty()) {
    if (absl::Status s = CheckKeyId("keyId", key_id); !s.ok()) return s;
    q.key_ids.push_back(std::string(key_id));
  }
  if (minimum.has_value()) {
    int64_t ts = 0;
    if (!absl::SimpleAtoi(*minimum, &ts) || ts < 0 || ts > core::kMaxSafeInteger) {
      return Tagged(absl::InvalidArgumentError(absl::StrCat(
                        "minimum_valid_until_ts \"", *minimum, "\" is not a non-negative integer")),
                    "M_INVALID_PARAM");
    }
    q.minimum_valid_until_ts = ts;
  }
  return q;
}

int64_t RequiredValidity(const ServerQuery& query, const store::StoredResponse* cached,
                         int64_t now_ms) {
  if (query.minimum_valid_until_ts.has_value()) return *query.minimum_valid_until_ts;
  if (cached == nullptr) return 0;
  // valid_until >= now + (now - fetched)  <=>  now <= fetched + (valid_until - fetched) / 2
  return now_ms + std::max<int64_t>(0, now_ms - cached->fetched_ts);
}

bool Fresh(const ServerQuery& query, const store::StoredResponse& cached, int64_t now_ms) {
  return cached.valid_until_ts >= RequiredValidity(query, &cached, now_ms);
}

const store::StoredResponse* OriginResponse(const std::vector<store::StoredResponse>& responses,
                                            absl::string_view server_name) {
  const store::StoredResponse* best = nullptr;
  for (const store::StoredResponse& r : responses) {
    if (r.source != server_name) continue;
    if (best == nullptr || r.fetched_ts > best->fetched_ts) best = &r;
  }
  return best;
}

absl::StatusOr<std::string> Countersign(absl::string_view raw_json, absl::string_view notary,
                                        absl::string_view key_id,
                                        const core::Ed25519SigningKey& key) {
  absl::StatusOr<core::Value> object = core::ParseJson(raw_json);
  if (!object.ok()) return object.status();
  if (absl::Status s = core::SignJson(&*object, notary, key_id, key); !s.ok()) return s;
  return core::CanonicalJson(*object);
}

std::string QueryResponseBody(const std::vector<std::string>& entries) {
  std::string out = "{\"server_keys\":[";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ',';
    out += entries[i];
  }
  out += "]}";
  return out;
}

MatrixError ErrorOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      return {413, "M_TOO_LARGE", std::string(status.message())};
    case absl::StatusCode::kInvalidArgument: {
      absl::optional<absl::Cord> errcode = status.GetPayload(kErrcode);
      return {400, errcode ? std::string(*errcode) : "M_INVALID_PARAM",
              std::string(status.message())};
    }
    default:
      return {500, "M_UNKNOWN", std::string(status.message())};
  }
}

std::string ErrorBody(const MatrixError& error) {
  core::Value body = core::Value::Object();
  body.Set("errcode", core::Value::String(error.errcode));
  body.Set("error", core::Value::String(error.error));
  return core::ToJson(body);
}

std::string OwnKeyResponse(absl::string_view server_name, absl::string_view key_id,
                           const core::Ed25519SigningKey& key, int64_t valid_until_ts) {
  core::Value verify_key = core::Value::Object();
  verify_key.Set("key", core::Value::String(
                            core::EncodeBase64Unpadded(core::AsStringView(key.public_key()))));
  core::Value verify_keys = core::Value::Object();
  verify_keys.Set(std::string(key_id), std::move(verify_key));
  core::Value response = core::Value::Object();
  response.Set("server_name", core::Value::String(std::string(server_name)));
  response.Set("verify_keys", std::move(verify_keys));
  response.Set("old_verify_keys", core::Value::Object());
  response.Set("valid_until_ts", core::Value::Integer(valid_until_ts));
  // Strings and integers only: signing cannot fail.
  (void)core::SignJson(&response, server_name, key_id, key);
  return core::ToJson(response);
}

}  // namespace keyverifier::notary
