#include "service/notary/notary.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/core/json_value.h"

namespace keyverifier::notary {
namespace {

constexpr absl::string_view kQueryPath = "/_matrix/key/v2/query";
constexpr absl::string_view kServerPath = "/_matrix/key/v2/server";

// A percent-decoded path segment; nullopt if it does not decode.
std::optional<std::string> DecodeSegment(absl::string_view segment) {
  size_t n = 0;
  char* decoded = evhttp_uridecode(std::string(segment).c_str(), 0, &n);
  if (decoded == nullptr) return std::nullopt;
  std::string out(decoded, n);
  std::free(decoded);
  return out;
}

// The value of `name` in a query string, if present.
std::optional<std::string> QueryParam(const std::string& query, const char* name) {
  if (query.empty()) return std::nullopt;
  evkeyvalq params;
  TAILQ_INIT(&params);
  if (evhttp_parse_query_str(query.c_str(), &params) != 0) {
    evhttp_clear_headers(&params);
    return std::nullopt;
  }
  std::optional<std::string> out;
  if (const char* v = evhttp_find_header(&params, name)) out = v;
  evhttp_clear_headers(&params);
  return out;
}

HttpResponse Error(const MatrixError& e) { return {e.http_status, ErrorBody(e)}; }

}  // namespace

struct Notary::Pending {
  std::vector<ServerQuery> queries;
  std::vector<std::optional<store::StoredResponse>> served;
  std::vector<bool> fetched;  // a fetch from the origin answered it
  std::vector<bool> stale;    // refreshing was needed and did not happen
  std::vector<std::string> own;  // per query: the notary's own response, if it is the server
  absl::Time deadline;
  async::Callback<std::string> done;
};

Notary::Notary(keyring::KeyRing& keyring, const Clock& clock, observe::Observer& observer,
               core::NamedSigningKey key, Options options)
    : keyring_(keyring),
      clock_(clock),
      observer_(observer),
      key_(std::move(key)),
      options_(std::move(options)) {}

std::string Notary::OwnKeys() {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (now >= own_keys_renew_) {
    own_keys_ = OwnKeyResponse(options_.server_name, key_.key_id, key_.key,
                               absl::ToUnixMillis(now + options_.own_keys_validity));
    own_keys_renew_ = now + options_.own_keys_validity / 2;
  }
  return own_keys_;
}

void Notary::Query(std::vector<ServerQuery> queries, async::Callback<std::string> done) {
  auto pending = std::make_shared<Pending>();
  const size_t n = queries.size();
  pending->queries = std::move(queries);
  pending->served.resize(n);
  pending->fetched.assign(n, false);
  pending->stale.assign(n, false);
  pending->own.resize(n);
  pending->deadline = clock_.Now() + options_.query_timeout;
  pending->done = std::move(done);
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i) {
    if (options_.serve_own_keys && pending->queries[i].server_name.str() == options_.server_name) {
      pending->own[i] = OwnKeys();
    } else {
      which.push_back(i);
    }
  }
  Lookup(std::move(pending), std::move(which), false);
}

// Asks the keyring for the servers `which`: first with the caller's
// minimum (or none); then, for answers not fresh enough (`again`), with the
// validity that makes the keyring ask the origin.
void Notary::Lookup(std::shared_ptr<Pending> pending, std::vector<size_t> which, bool again) {
  if (which.empty()) {
    Finish(pending);
    return;
  }
  const int64_t now_ms = absl::ToUnixMillis(clock_.Now());
  std::vector<keyring::KeyQuery> lookups;
  lookups.reserve(which.size());
  for (size_t i : which) {
    const ServerQuery& q = pending->queries[i];
    int64_t minimum = q.minimum_valid_until_ts.value_or(0);
    if (again) {
      const store::StoredResponse* cached =
          pending->served[i] ? &*pending->served[i] : nullptr;
      // No answer of the origin's own yet: only a fetch gives one.
      minimum = cached != nullptr ? RequiredValidity(q, cached, now_ms) : core::kMaxSafeInteger;
    }
    keyring::KeyQuery lookup(q.server_name, q.key_ids, minimum);
    lookups.push_back(std::move(lookup));
  }
  keyring_.GetKeysMany(
      std::move(lookups), pending->deadline,
      [this, pending, which, again](std::vector<absl::StatusOr<keyring::KeyResult>> results) {
        const int64_t now_ms = absl::ToUnixMillis(clock_.Now());
        std::vector<size_t> refresh;
        for (size_t j = 0; j < which.size(); ++j) {
          const size_t i = which[j];
          if (!results[j].ok()) continue;  // nothing known, or not in time: left out
          const keyring::KeyResult& r = *results[j];
          if (r.source.kind == keyring::KeySource::Kind::kOrigin) pending->fetched[i] = true;
          const store::StoredResponse* origin =
              OriginResponse(r.responses, pending->queries[i].server_name.str());
          if (origin != nullptr) pending->served[i] = *origin;
          const bool fresh = origin != nullptr && Fresh(pending->queries[i], *origin, now_ms);
          if (fresh || pending->fetched[i]) continue;
          if (again) {
            pending->stale[i] = true;
          } else {
            refresh.push_back(i);
          }
        }
        if (!again && !refresh.empty()) {
          Lookup(pending, std::move(refresh), true);
        } else {
          Finish(pending);
        }
      });
}

void Notary::Finish(const std::shared_ptr<Pending>& pending) {
  std::vector<std::string> entries;
  for (size_t i = 0; i < pending->queries.size(); ++i) {
    if (!pending->own[i].empty()) {
      entries.push_back(pending->own[i]);
      observer_.OnNotaryServed("own");
      continue;
    }
    if (!pending->served[i]) {
      observer_.OnNotaryServed("missing");
      continue;
    }
    absl::StatusOr<std::string> entry = Countersign(
        pending->served[i]->raw_json, options_.server_name, key_.key_id, key_.key);
    if (!entry.ok()) {
      observer_.OnNotaryServed("missing");
      continue;
    }
    entries.push_back(*std::move(entry));
    observer_.OnNotaryServed(pending->fetched[i] ? "fetched" : pending->stale[i] ? "stale" : "cached");
  }
  std::move(pending->done)(QueryResponseBody(entries));
}

void Notary::Handle(HttpRequest request, Respond respond) {
  auto reply = [this](absl::string_view endpoint, Respond respond, HttpResponse response) {
    observer_.OnNotaryRequest(endpoint, response.status);
    std::move(respond)(std::move(response));
  };
  auto answer = [this, reply](absl::string_view endpoint, Respond respond,
                              absl::StatusOr<std::vector<ServerQuery>> queries) mutable {
    if (!queries.ok()) {
      reply(endpoint, std::move(respond), Error(ErrorOf(queries.status())));
      return;
    }
    Query(*std::move(queries),
          [reply, endpoint, respond = std::move(respond)](absl::StatusOr<std::string> body) mutable {
            reply(endpoint, std::move(respond),
                  body.ok() ? HttpResponse{200, *std::move(body)} : Error(ErrorOf(body.status())));
          });
  };

  const absl::string_view path = request.path;
  if (path == kQueryPath) {
    if (request.method != "POST") {
      reply("query", std::move(respond), Error({405, "M_UNRECOGNIZED", "use POST"}));
      return;
    }
    answer("query", std::move(respond), ParseBatchQuery(request.body, options_.limits));
    return;
  }
  if (absl::StartsWith(path, absl::StrCat(kQueryPath, "/"))) {
    if (request.method != "GET") {
      reply("query", std::move(respond), Error({405, "M_UNRECOGNIZED", "use GET"}));
      return;
    }
    std::vector<absl::string_view> segments =
        absl::StrSplit(path.substr(kQueryPath.size() + 1), '/');
    if (segments.size() > 2 || segments[0].empty()) {
      reply("query", std::move(respond),
            Error({404, "M_UNRECOGNIZED", "expected /_matrix/key/v2/query/{serverName}"}));
      return;
    }
    std::optional<std::string> server = DecodeSegment(segments[0]);
    std::optional<std::string> key_id =
        segments.size() == 2 ? DecodeSegment(segments[1]) : std::optional<std::string>("");
    if (!server || !key_id) {
      reply("query", std::move(respond),
            Error({400, "M_INVALID_PARAM", "the path is not valid percent-encoding"}));
      return;
    }
    std::optional<std::string> minimum = QueryParam(request.query, "minimum_valid_until_ts");
    absl::StatusOr<ServerQuery> q = ParseSingleQuery(
        *server, *key_id,
        minimum ? std::optional<absl::string_view>(*minimum) : std::nullopt);
    if (!q.ok()) {
      answer("query", std::move(respond), q.status());
      return;
    }
    answer("query", std::move(respond), std::vector<ServerQuery>{*std::move(q)});
    return;
  }
  if (options_.serve_own_keys &&
      (path == kServerPath || absl::StartsWith(path, absl::StrCat(kServerPath, "/")))) {
    if (request.method != "GET") {
      reply("server", std::move(respond), Error({405, "M_UNRECOGNIZED", "use GET"}));
      return;
    }
    reply("server", std::move(respond), HttpResponse{200, OwnKeys()});
    return;
  }
  reply("other", std::move(respond), Error({404, "M_UNRECOGNIZED", "unrecognized request"}));
}

}  // namespace keyverifier::notary
