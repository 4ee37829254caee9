#include "service/fetch/notary_fetcher.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/json.h"
#include "service/fetch/direct_fetcher.h"
#include "service/net/well_known_fetcher.h"

namespace keyverifier::fetch {

absl::StatusOr<std::map<std::string, absl::StatusOr<core::ServerKeys>>> NotaryFetcher::Ask(
    net::HttpRequest http_request, const std::vector<KeyRequest>& requests,
    absl::Time deadline) {
  // A notary may answer for many servers; a batch of n can be large.
  http_request.max_response_bytes = kMaxKeyResponseBytes * std::max<size_t>(1, requests.size());
  absl::StatusOr<net::HttpResponse> r =
      SendToServer(discovery_, http_, notary_.server_name, http_request, deadline);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return absl::UnavailableError(absl::StrCat("notary ", notary_.server_name,
                                               " answered HTTP ", r->status));
  }
  absl::StatusOr<std::vector<absl::StatusOr<core::ServerKeys>>> entries =
      core::ParseNotaryResponse(r->body, notary_);
  if (!entries.ok()) return absl::UnavailableError(entries.status().message());

  std::map<std::string, absl::StatusOr<core::ServerKeys>> out;
  std::vector<std::string> bad;
  for (absl::StatusOr<core::ServerKeys>& e : *entries) {
    if (!e.ok()) {
      bad.push_back(std::string(e.status().message()));
      continue;
    }
    auto it = out.find(e->server_name);
    if (it == out.end() || !it->second.ok() ||
        it->second->valid_until_ts < e->valid_until_ts) {
      out.insert_or_assign(e->server_name, *std::move(e));
    }
  }
  for (const KeyRequest& req : requests) {
    if (out.count(req.server_name)) continue;
    std::string why = absl::StrCat("notary ", notary_.server_name,
                                   " returned no valid keys for ", req.server_name);
    if (!bad.empty()) absl::StrAppend(&why, " (rejected: ", absl::StrJoin(bad, "; "), ")");
    out.emplace(req.server_name, absl::UnavailableError(why));
  }
  return out;
}

absl::StatusOr<core::ServerKeys> NotaryFetcher::Fetch(const KeyRequest& request,
                                                      absl::Time deadline) {
  net::HttpRequest http_request;
  http_request.path = absl::StrCat("/_matrix/key/v2/query/", net::UrlEscape(request.server_name));
  if (request.minimum_valid_until_ts > 0) {
    absl::StrAppend(&http_request.path, "?minimum_valid_until_ts=",
                    request.minimum_valid_until_ts);
  }
  absl::StatusOr<std::map<std::string, absl::StatusOr<core::ServerKeys>>> answers =
      Ask(std::move(http_request), {request}, deadline);
  if (!answers.ok()) return answers.status();
  return answers->at(request.server_name);
}

absl::StatusOr<std::map<std::string, absl::StatusOr<core::ServerKeys>>>
NotaryFetcher::FetchMany(const std::vector<KeyRequest>& requests, absl::Time deadline) {
  // {"server_keys": {"a.org": {"ed25519:x": {"minimum_valid_until_ts": N}}, "b.org": {}}}
  core::Value servers = core::Value::Object();
  for (const KeyRequest& req : requests) {
    core::Value keys = core::Value::Object();
    for (const std::string& id : req.key_ids) {
      core::Value criteria = core::Value::Object();
      if (req.minimum_valid_until_ts > 0) {
        criteria.Set("minimum_valid_until_ts", core::Value::Integer(req.minimum_valid_until_ts));
      }
      keys.Set(id, std::move(criteria));
    }
    servers.Set(req.server_name, std::move(keys));
  }
  core::Value body = core::Value::Object();
  body.Set("server_keys", std::move(servers));
  absl::StatusOr<std::string> json = core::CanonicalJson(body);
  if (!json.ok()) return json.status();
  net::HttpRequest http_request;
  http_request.method = "POST";
  http_request.path = "/_matrix/key/v2/query";
  http_request.body = *std::move(json);
  return Ask(std::move(http_request), requests, deadline);
}

}  // namespace keyverifier::fetch
