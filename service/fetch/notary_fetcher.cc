#include "service/fetch/notary_fetcher.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/canonical_json.h"
#include "service/core/json_value.h"
#include "service/fetch/direct_fetcher.h"
#include "service/net/well_known_fetcher.h"

namespace keyverifier::fetch {

void NotaryFetcher::Ask(net::HttpRequest http_request, std::vector<KeyQuery> requests,
                        absl::Time deadline, async::Callback<KeysByServer> done) {
  // A notary may answer for many servers; a batch of n can be large.
  http_request.max_response_bytes = kMaxKeyResponseBytes * std::max<size_t>(1, requests.size());
  client_.Send(
      notary_.server_name, std::move(http_request), deadline,
      [this, requests = std::move(requests), done = std::move(done)](
          absl::StatusOr<net::HttpResponse> r) mutable {
        if (!r.ok()) return done(r.status());
        if (r->status != 200) {
          return done(absl::UnavailableError(
              absl::StrCat("notary ", notary_.server_name.str(), " answered HTTP ", r->status)));
        }
        absl::StatusOr<std::vector<core::Value>> entries = core::NotaryEntries(r->body, notary_);
        if (!entries.ok()) return done(absl::UnavailableError(entries.status().message()));
        CheckEntries(*std::move(entries), [this, requests = std::move(requests),
                                           done = std::move(done)](Checked checked) mutable {
          done(Collect(std::move(checked), requests));
        });
      });
}

void NotaryFetcher::CheckEntries(std::vector<core::Value> entries,
                                 absl::AnyInvocable<void(Checked)> done) {
  // Below this many entries a single task is as quick as a hand-off.
  constexpr size_t kParallelFrom = 32;
  constexpr size_t kSlice = 64;
  if (options_.checker == nullptr || entries.size() < kParallelFrom) {
    Checked out;
    out.reserve(entries.size());
    for (const core::Value& e : entries) {
      out.push_back(core::CheckNotaryEntry(e, notary_, options_.max_keys));
    }
    return done(std::move(out));
  }
  struct Job {
    std::vector<core::Value> entries;
    Checked out;
    absl::AnyInvocable<void(Checked)> done;
  };
  auto job = std::make_shared<Job>();
  job->entries = std::move(entries);
  job->out.resize(job->entries.size(), absl::InternalError("not checked"));
  job->done = std::move(done);
  const size_t slices = (job->entries.size() + kSlice - 1) / kSlice;
  // The last slice to finish hands the outcomes on.
  auto fanin = async::Fanin<bool>::Create(slices, [job](std::vector<absl::StatusOr<bool>>) {
    job->done(std::move(job->out));
  });
  for (size_t s = 0; s < slices; ++s) {
    auto check = [this, job, s, fanin] {
      const size_t end = std::min(job->entries.size(), (s + 1) * kSlice);
      for (size_t i = s * kSlice; i < end; ++i) {
        job->out[i] = core::CheckNotaryEntry(job->entries[i], notary_, options_.max_keys);
      }
      fanin->Slot(s)(true);
    };
    if (!options_.checker->Post(check)) check();  // stopping: check here
  }
}

KeysByServer NotaryFetcher::Collect(Checked checked, const std::vector<KeyQuery>& requests) const {
  // The best entry per server named in the answer (by the name as the entry
  // gives it, which the core checked); servers not asked are left out.
  std::map<std::string, core::ServerKeys> best;
  std::vector<std::string> bad;
  for (absl::StatusOr<core::ServerKeys>& e : checked) {
    if (!e.ok()) {
      bad.push_back(std::string(e.status().message()));
      continue;
    }
    auto it = best.find(e->server_name);
    if (it == best.end() || it->second.valid_until_ts < e->valid_until_ts) {
      best.insert_or_assign(e->server_name, *std::move(e));
    }
  }
  KeysByServer out;
  for (const KeyQuery& req : requests) {
    if (out.count(req.server_name)) continue;
    if (auto it = best.find(req.server_name.str()); it != best.end()) {
      out.emplace(req.server_name, std::move(it->second));
      best.erase(it);
      continue;
    }
    std::string why = absl::StrCat("notary ", notary_.server_name.str(),
                                   " returned no valid keys for ", req.server_name.str());
    if (bad.size() == 1) absl::StrAppend(&why, " (rejected: ", bad[0], ")");
    if (bad.size() > 1) {  // a few, not all: every missing server gets this text
      absl::StrAppend(&why, " (rejected ", bad.size(), " entries: ",
                      absl::StrJoin(bad.begin(), bad.begin() + std::min<size_t>(3, bad.size()),
                                    "; "),
                      bad.size() > 3 ? "; ..." : "", ")");
    }
    out.emplace(req.server_name, absl::UnavailableError(why));
  }
  return out;
}

void NotaryFetcher::Fetch(const KeyQuery& request, absl::Time deadline,
                          async::Callback<core::ServerKeys> done) {
  net::HttpRequest http_request;
  http_request.path =
      absl::StrCat("/_matrix/key/v2/query/", net::UrlEscape(request.server_name.view()));
  if (request.minimum_valid_until_ts > 0) {
    absl::StrAppend(&http_request.path, "?minimum_valid_until_ts=",
                    request.minimum_valid_until_ts);
  }
  Ask(std::move(http_request), {request}, deadline,
      [server = request.server_name, done = std::move(done)](
          absl::StatusOr<KeysByServer> answers) mutable {
        if (!answers.ok()) return done(answers.status());
        done(std::move(answers->at(server)));
      });
}

void NotaryFetcher::PostBatch(std::vector<KeyQuery> requests, absl::Time deadline,
                              async::Callback<KeysByServer> done) {
  // {"server_keys": {"a.org": {"ed25519:x": {"minimum_valid_until_ts": N}}, "b.org": {}}}
  core::Value servers = core::Value::Object();
  for (const KeyQuery& req : requests) {
    core::Value keys = core::Value::Object();
    for (const std::string& id : req.key_ids) {
      core::Value criteria = core::Value::Object();
      if (req.minimum_valid_until_ts > 0) {
        criteria.Set("minimum_valid_until_ts", core::Value::Integer(req.minimum_valid_until_ts));
      }
      keys.Set(id, std::move(criteria));
    }
    servers.Set(req.server_name.str(), std::move(keys));
  }
  core::Value body = core::Value::Object();
  body.Set("server_keys", std::move(servers));
  absl::StatusOr<std::string> json = core::CanonicalJson(body);
  if (!json.ok()) return done(json.status());
  net::HttpRequest http_request;
  http_request.method = "POST";
  http_request.path = "/_matrix/key/v2/query";
  http_request.body = *std::move(json);
  Ask(std::move(http_request), std::move(requests), deadline, std::move(done));
}

void NotaryFetcher::FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                              async::Callback<KeysByServer> done) {
  const size_t chunk = std::max<size_t>(1, options_.batch_size);
  if (requests.size() <= chunk) return PostBatch(std::move(requests), deadline, std::move(done));
  std::vector<std::vector<KeyQuery>> batches;
  for (size_t i = 0; i < requests.size(); i += chunk) {
    batches.emplace_back(requests.begin() + i,
                         requests.begin() + std::min(requests.size(), i + chunk));
  }
  // Every batch in flight at once; a batch that failed as a whole gives
  // each of its servers that error.
  auto names = std::make_shared<std::vector<std::vector<core::ServerName>>>();
  for (const auto& b : batches) {
    names->emplace_back();
    for (const KeyQuery& r : b) names->back().push_back(r.server_name);
  }
  auto fanin = async::Fanin<KeysByServer>::Create(
      batches.size(), [names, done = std::move(done)](
                          std::vector<absl::StatusOr<KeysByServer>> results) mutable {
        KeysByServer out;
        bool any = false;
        absl::Status last;
        for (size_t i = 0; i < results.size(); ++i) {
          if (results[i].ok()) {
            any = true;
            for (auto& [server, keys] : *results[i]) out.insert_or_assign(server, std::move(keys));
          } else {
            last = results[i].status();
            for (const core::ServerName& server : (*names)[i]) out.insert_or_assign(server, last);
          }
        }
        if (!any) return done(last);
        done(std::move(out));
      });
  for (size_t i = 0; i < batches.size(); ++i) {
    PostBatch(std::move(batches[i]), deadline, fanin->Slot(i));
  }
}

}  // namespace keyverifier::fetch
