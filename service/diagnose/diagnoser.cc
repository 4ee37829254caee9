#include "service/diagnose/diagnoser.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "service/core/base64.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/server_name.h"
#include "service/net/well_known.h"
#include "service/tls/verdict.h"

namespace keyverifier::diagnose {
namespace {

using Keys = google::protobuf::RepeatedPtrField<v1::DiagnoseKey>;

constexpr size_t kMaxBodyShown = 4096;
constexpr absl::string_view kSrvServices[] = {"_matrix-fed._tcp.", "_matrix._tcp."};

std::string Base64(const core::Ed25519PublicKey& k) {
  return core::EncodeBase64Unpadded(
      absl::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

void AddKeys(const std::vector<core::VerifyKey>& keys, Keys* out) {
  for (const core::VerifyKey& k : keys) {
    v1::DiagnoseKey* d = out->Add();
    d->set_key_id(k.key_id);
    d->set_public_key(Base64(k.public_key));
    if (k.expired_ts) d->set_expired_ts(*k.expired_ts);
  }
}

}  // namespace

struct Diagnoser::Job {
  explicit Job(core::ServerName n) : server(n.str()), name(std::move(n)) {}

  std::string server;
  core::ServerName name;
  absl::Time deadline;
  absl::Time started;
  async::Callback<v1::DiagnoseServerResponse> done;

  absl::Mutex mu;
  int pending ABSL_GUARDED_BY(mu) = 1;  // the starter's own
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  v1::DiagnoseServerResponse report ABSL_GUARDED_BY(mu);
  // Per probed address: the key response it served, if valid.
  std::vector<std::optional<core::ServerKeys>> parsed ABSL_GUARDED_BY(mu);

  void Hold() {
    absl::MutexLock lock(&mu);
    ++pending;
  }
  // Notes a shutdown (a step ended with CancelledError).
  void Note(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (absl::IsCancelled(s)) cancelled = true;
  }
};

void Diagnoser::Diagnose(const std::string& server_name, absl::Time deadline,
                         async::Callback<v1::DiagnoseServerResponse> done) const {
  absl::StatusOr<core::ServerName> name = core::ServerName::Parse(server_name);
  if (!name.ok()) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("server_name: ", name.status().message())));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!reports_.TryTake(deps_.clock->Now())) {
      return done(absl::ResourceExhaustedError(absl::StrCat(
          "too many diagnose reports: at most ", options_.reports_per_second,
          " a second (bursts of ", options_.burst, "); try again shortly")));
    }
  }
  auto job = std::make_shared<Job>(*name);
  job->started = deps_.clock->Now();
  // Leave the caller a little of its time to get the report back.
  const absl::Duration left = std::max(absl::ZeroDuration(), deadline - job->started);
  job->deadline = std::min(job->started + options_.budget,
                           deadline - std::min(absl::Seconds(1), left / 10));
  job->done = std::move(done);
  {
    absl::MutexLock lock(&job->mu);
    job->report.set_server_name(server_name);
    job->report.set_checked_at_ts(absl::ToUnixMillis(job->started));
  }
  History(*job);  // local: before anything is fetched
  if (name->is_ip_literal() || name->port()) {
    // The spec looks up neither .well-known nor SRV.
    absl::MutexLock lock(&job->mu);
    job->report.mutable_discovery()->mutable_well_known()->set_attempted(false);
  } else {
    WellKnown(job, absl::AsciiStrToLower(name->host()));
  }
  Discover(job);
  Notaries(job);
  Version(job);
  Release(std::move(job));
}

void Diagnoser::History(Job& job) const {
  if (deps_.store == nullptr) return;
  absl::StatusOr<std::vector<store::StoredKey>> keys = deps_.store->GetKeys(job.server);
  absl::MutexLock lock(&job.mu);
  v1::DiagnoseKeyResponse* out = job.report.mutable_keys();
  if (!keys.ok()) {
    out->set_history_error(std::string(keys.status().message()));
    return;
  }
  for (const store::StoredKey& k : *keys) {
    v1::DiagnoseHistoryKey* h = out->add_history();
    h->set_key_id(k.key.key_id);
    h->set_public_key(Base64(k.key.public_key));
    h->set_old(k.is_old());
    h->set_first_seen_ts(k.first_seen_ts);
    h->set_last_seen_ts(k.last_seen_ts);
    for (const std::string& s : k.sources) h->add_sources(s);
  }
}

void Diagnoser::WellKnown(std::shared_ptr<Job> job, const std::string& host) const {
  job->Hold();
  deps_.well_known->Fetch(
      host, job->deadline,
      [this, job, host](absl::StatusOr<net::WellKnownResponse> r) {
        std::string srv_host = host;
        {
          absl::MutexLock lock(&job->mu);
          v1::DiagnoseWellKnown* wk = job->report.mutable_discovery()->mutable_well_known();
          wk->set_attempted(true);
          if (!r.ok()) {
            job->Note(r.status());
            wk->set_error(std::string(r.status().message()));
          } else {
            wk->set_http_status(r->status);
            wk->set_body(r->body.substr(0, kMaxBodyShown));
            wk->set_cache_control(r->cache_control);
            if (r->status == 200) {
              absl::StatusOr<core::ServerName> delegated = net::ParseWellKnownBody(r->body);
              if (delegated.ok()) {
                wk->set_delegated_server(delegated->str());
                wk->set_cache_seconds(absl::ToInt64Seconds(
                    net::WellKnownCacheTime(r->cache_control, options_.well_known_cache)));
                // A delegated IP literal or port: no SRV step (3.1, 3.2).
                srv_host = !delegated->is_ip_literal() && !delegated->port()
                               ? absl::AsciiStrToLower(delegated->host())
                               : "";
              } else {
                wk->set_invalid_reason(std::string(delegated.status().message()));
              }
            }
          }
        }
        if (!srv_host.empty()) Srv(job, srv_host);
        Release(job);
      });
}

void Diagnoser::Srv(std::shared_ptr<Job> job, const std::string& host) const {
  {
    absl::MutexLock lock(&job->mu);
    v1::DiagnoseDiscovery* d = job->report.mutable_discovery();
    d->set_srv_host(host);
    for (absl::string_view service : kSrvServices) d->add_srv()->set_name(absl::StrCat(service, host));
  }
  for (int s = 0; s < static_cast<int>(std::size(kSrvServices)); ++s) {
    job->Hold();
    const std::string name = absl::StrCat(kSrvServices[s], host);
    deps_.resolver->LookupSrv(
        name, job->deadline,
        [this, job, s](absl::StatusOr<std::vector<net::SrvRecord>> records) {
          std::vector<std::pair<int, std::string>> targets;
          {
            absl::MutexLock lock(&job->mu);
            v1::DiagnoseSrv* srv = job->report.mutable_discovery()->mutable_srv(s);
            if (!records.ok()) {
              job->Note(records.status());
              if (!absl::IsNotFound(records.status())) {
                srv->set_error(std::string(records.status().message()));
              }
            } else {
              srv->set_found(true);
              for (const net::SrvRecord& r : *records) {
                v1::DiagnoseSrvTarget* t = srv->add_targets();
                t->set_target(r.target.empty() ? "." : r.target);
                t->set_port(r.port);
                t->set_priority(r.priority);
                t->set_weight(r.weight);
                if (!r.target.empty()) targets.push_back({srv->targets_size() - 1, r.target});
              }
            }
          }
          for (const auto& [j, target] : targets) {
            job->Hold();
            deps_.resolver->LookupHost(
                target, job->deadline,
                [this, job, s, j = j](absl::StatusOr<std::vector<net::IpAddress>> a) {
                  {
                    absl::MutexLock lock(&job->mu);
                    v1::DiagnoseSrvTarget* t =
                        job->report.mutable_discovery()->mutable_srv(s)->mutable_targets(j);
                    if (!a.ok()) {
                      job->Note(a.status());
                      t->set_error(std::string(a.status().message()));
                    } else {
                      for (const net::IpAddress& ip : *a) t->add_addresses(ip.ToString());
                    }
                  }
                  Release(job);
                });
            job->Hold();
            deps_.resolver->LookupCnames(
                target, job->deadline,
                [this, job, s, j = j](absl::StatusOr<std::vector<std::string>> chain) {
                  {
                    absl::MutexLock lock(&job->mu);
                    if (chain.ok()) {
                      v1::DiagnoseSrvTarget* t =
                          job->report.mutable_discovery()->mutable_srv(s)->mutable_targets(j);
                      for (const std::string& link : *chain) t->add_cname_chain(link);
                    } else {
                      job->Note(chain.status());
                    }
                  }
                  Release(job);
                });
          }
          Release(job);
        });
  }
}

void Diagnoser::Discover(std::shared_ptr<Job> job) const {
  job->Hold();
  deps_.discovery->Resolve(
      job->name, job->deadline, [this, job](absl::StatusOr<net::ResolvedServer> resolved) {
        std::vector<int> probes;
        {
          absl::MutexLock lock(&job->mu);
          v1::DiagnoseDiscovery* d = job->report.mutable_discovery();
          if (!resolved.ok()) {
            job->Note(resolved.status());
            d->set_error(std::string(resolved.status().message()));
          } else {
            d->set_route(resolved->route);
            d->set_host_header(resolved->host_header);
            d->set_tls_name(resolved->tls_name);
            for (const net::Endpoint& e : resolved->endpoints) d->add_endpoints(e.ToString());
            const int n = std::min<int>(options_.max_addresses,
                                        static_cast<int>(resolved->endpoints.size()));
            job->parsed.resize(static_cast<size_t>(n));
            for (int i = 0; i < n; ++i) {
              job->report.add_addresses()->set_endpoint(resolved->endpoints[i].ToString());
              probes.push_back(i);
            }
          }
        }
        for (int i : probes) Probe(job, i, *resolved);
        Release(job);
      });
}

void Diagnoser::Probe(std::shared_ptr<Job> job, int index,
                      const net::ResolvedServer& resolved) const {
  net::HttpRequest request;
  request.path = "/_matrix/key/v2/server";
  request.host_header = resolved.host_header;
  request.tls_name = resolved.tls_name;
  request.connect_to = resolved.endpoints[static_cast<size_t>(index)];
  request.max_response_bytes = 256 * 1024;
  // The handshake alone: what the address presents, judged here whatever
  // the policy would let the connection go on with.
  net::HttpRequest handshake = request;
  handshake.handshake_only = true;
  job->Hold();
  deps_.http->Send(
      handshake, job->deadline,
      [this, job, index, tls_name = resolved.tls_name](absl::StatusOr<net::HttpResponse> r) {
        std::optional<absl::StatusOr<tls::CertificateCheck>> check;
        if (r.ok()) {
          check = deps_.checker->CheckPresented(tls_name, r->peer_chain_der, r->peer_scts,
                                                job->started);
        }
        {
          absl::MutexLock lock(&job->mu);
          v1::DiagnoseAddress* a = job->report.mutable_addresses(index);
          if (!r.ok()) {
            job->Note(r.status());
            a->set_handshake_error(std::string(r.status().message()));
          } else {
            a->set_tls_version(r->tls_version);
            a->set_tls_cipher(r->tls_cipher);
            if (!check->ok()) {
              a->add_certificate_reasons(std::string(check->status().message()));
            } else {
              const tls::Verdict& v = (*check)->verdict;
              a->set_certificate_valid(v.valid);
              for (const tls::Finding& f : v.reasons) {
                a->add_certificate_reasons(
                    absl::StrCat(tls::ReasonName(f.reason), ": ", f.message));
              }
              a->set_certificate_rule(std::string(tls::AppliedRuleName(v.rule)));
              if (!v.presented.empty()) {
                const tls::CertificateInfo& leaf = v.presented.front();
                a->set_certificate_subject(leaf.subject);
                for (const std::string& n : leaf.dns_names) a->add_certificate_names(n);
                for (const std::string& n : leaf.ip_addresses) a->add_certificate_names(n);
                a->set_certificate_not_after_ts(absl::ToUnixMillis(leaf.not_after));
                a->set_certificate_days_left(
                    static_cast<int64_t>(absl::ToDoubleHours(leaf.not_after - job->started) /
                                         24.0));
              }
            }
          }
        }
        Release(job);
      });
  job->Hold();
  deps_.http->Send(
      request, job->deadline, [this, job, index](absl::StatusOr<net::HttpResponse> r) {
        {
          absl::MutexLock lock(&job->mu);
          v1::DiagnoseAddress* a = job->report.mutable_addresses(index);
          if (!r.ok()) {
            job->Note(r.status());
            a->set_keys_error(std::string(r.status().message()));
          } else {
            a->set_keys_http_status(r->status);
            if (r->status != 200) {
              a->set_keys_error(absl::StrCat("HTTP ", r->status));
            } else {
              core::ServerKeyExpectations expect;
              expect.server_name = job->server;
              expect.max_keys = options_.max_keys;
              absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(r->body, expect);
              if (!keys.ok()) {
                a->set_keys_error(std::string(keys.status().message()));
              } else {
                AddKeys(keys->verify_keys, a->mutable_verify_keys());
                AddKeys(keys->old_verify_keys, a->mutable_old_verify_keys());
                a->set_valid_until_ts(keys->valid_until_ts);
                job->parsed[static_cast<size_t>(index)] = *std::move(keys);
              }
            }
          }
        }
        Release(job);
      });
}

void Diagnoser::Notaries(std::shared_ptr<Job> job) const {
  {
    absl::MutexLock lock(&job->mu);
    for (fetch::KeyFetcher* n : deps_.notaries) job->report.add_notaries()->set_notary(n->source());
  }
  for (size_t i = 0; i < deps_.notaries.size(); ++i) {
    job->Hold();
    deps_.notaries[i]->Fetch(
        fetch::KeyQuery(job->name), job->deadline,
        [this, job, i](absl::StatusOr<core::ServerKeys> keys) {
          {
            absl::MutexLock lock(&job->mu);
            v1::DiagnoseNotary* n = job->report.mutable_notaries(static_cast<int>(i));
            if (!keys.ok()) {
              job->Note(keys.status());
              n->set_error(std::string(keys.status().message()));
            } else {
              n->set_answered(true);
              n->set_valid_until_ts(keys->valid_until_ts);
              AddKeys(keys->verify_keys, n->mutable_verify_keys());
              AddKeys(keys->old_verify_keys, n->mutable_old_verify_keys());
            }
          }
          Release(job);
        });
  }
}

void Diagnoser::Version(std::shared_ptr<Job> job) const {
  net::HttpRequest request;
  request.path = "/_matrix/federation/v1/version";
  request.max_response_bytes = 64 * 1024;
  job->Hold();
  deps_.federation->Send(
      job->name, std::move(request), job->deadline,
      [this, job](absl::StatusOr<net::HttpResponse> r) {
        {
          absl::MutexLock lock(&job->mu);
          v1::DiagnoseVersion* v = job->report.mutable_version();
          if (!r.ok()) {
            job->Note(r.status());
            v->set_error(std::string(r.status().message()));
          } else {
            v->set_http_status(r->status);
            absl::StatusOr<core::Value> body = core::ParseJson(r->body);
            const core::Value* server =
                body.ok() && body->is_object() ? body->Find("server") : nullptr;
            if (r->status != 200) {
              v->set_error(absl::StrCat("HTTP ", r->status));
            } else if (server == nullptr || !server->is_object()) {
              v->set_error("the body is not {\"server\": {\"name\": ..., \"version\": ...}}");
            } else {
              v->set_answered(true);
              for (auto [field, set] :
                   {std::pair<const char*, void (v1::DiagnoseVersion::*)(const std::string&)>{
                        "name", &v1::DiagnoseVersion::set_name},
                    {"version", &v1::DiagnoseVersion::set_version}}) {
                const core::Value* s = server->Find(field);
                if (s != nullptr && s->is_string()) (v->*set)(s->string_value());
              }
            }
          }
        }
        Release(job);
      });
}

void Diagnoser::Release(std::shared_ptr<Job> job) const {
  v1::DiagnoseServerResponse report;
  std::vector<std::optional<core::ServerKeys>> parsed;
  bool cancelled = false;
  {
    absl::MutexLock lock(&job->mu);
    if (--job->pending > 0) return;
    cancelled = job->cancelled;
    report = std::move(job->report);
    parsed = std::move(job->parsed);
  }
  if (cancelled) return job->done(absl::CancelledError("the service is shutting down"));
  // The direct answer: the first address, in discovery's order, that served
  // a valid response (what a peer's fetch would use).
  v1::DiagnoseKeyResponse* keys = report.mutable_keys();
  std::set<std::string> errors;
  for (size_t i = 0; i < parsed.size(); ++i) {
    const v1::DiagnoseAddress& a = report.addresses(static_cast<int>(i));
    if (!parsed[i]) {
      errors.insert(absl::StrCat(a.endpoint(), ": ",
                                 a.keys_error().empty() ? a.handshake_error() : a.keys_error()));
      continue;
    }
    if (keys->valid()) continue;
    keys->set_valid(true);
    keys->set_endpoint(a.endpoint());
    keys->set_valid_until_ts(parsed[i]->valid_until_ts);
    for (const core::VerifyKey& k : parsed[i]->verify_keys) keys->add_signed_by(k.key_id);
    AddKeys(parsed[i]->verify_keys, keys->mutable_verify_keys());
    AddKeys(parsed[i]->old_verify_keys, keys->mutable_old_verify_keys());
  }
  if (!keys->valid()) keys->set_error(absl::StrJoin(errors, "; "));
  AnalysisOptions analysis = options_.analysis;
  analysis.now_ms = absl::ToUnixMillis(job->started);
  Analyze(&report, analysis);
  job->done(std::move(report));
}

}  // namespace keyverifier::diagnose
