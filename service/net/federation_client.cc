#include "service/net/federation_client.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyverifier::net {

struct FederationClient::Attempt {
  explicit Attempt(core::ServerName server) : server(std::move(server)) {}
  const core::ServerName server;
  HttpRequest request;
  absl::Time deadline;
  std::vector<Endpoint> endpoints;
  std::vector<std::string> failures;
  async::Callback<HttpResponse> done;
  Priority priority = Priority::kInteractive;
};

void FederationClient::Send(const core::ServerName& server, HttpRequest request,
                            absl::Time deadline, async::Callback<HttpResponse> done,
                            Priority priority) {
  auto attempt = std::make_shared<Attempt>(server);
  attempt->request = std::move(request);
  attempt->deadline = deadline;
  attempt->priority = priority;
  const bool bulk = priority == Priority::kBulk && options_.max_bulk > 0;
  // Whatever the outcome, the server's slot (and the bulk slot) is given
  // back first.
  attempt->done = [this, server = attempt->server, bulk,
                   done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
    Release(server);
    if (bulk) ReleaseBulk();
    done(std::move(r));
  };
  if (bulk) {
    async::Task later = [this, attempt] { Admit(attempt); };
    if (!bulk_.Acquire(later)) return;  // queued
  }
  Admit(std::move(attempt));
}

void FederationClient::Admit(std::shared_ptr<Attempt> attempt) {
  async::Task later = [this, attempt] { Start(attempt); };
  {
    // Under mu_, so that Release cannot drop the server's limiter between.
    absl::MutexLock lock(&mu_);
    std::unique_ptr<async::Limiter>& slots = per_server_[attempt->server];
    if (slots == nullptr) slots = std::make_unique<async::Limiter>(options_.max_per_server);
    if (!slots->Acquire(later)) return;  // queued behind this server's others
  }
  Start(std::move(attempt));
}

void FederationClient::Release(const core::ServerName& server) {
  async::Task next;
  {
    absl::MutexLock lock(&mu_);
    auto it = per_server_.find(server);
    if (it == per_server_.end()) return;
    next = it->second->Release();
    if (!next && it->second->idle()) per_server_.erase(it);
  }
  if (next) next();  // takes over the slot
}

void FederationClient::ReleaseBulk() {
  if (async::Task next = bulk_.Release()) next();  // takes over the slot
}

void FederationClient::Start(std::shared_ptr<Attempt> attempt) {
  const core::ServerName& server = attempt->server;
  const absl::Time deadline = attempt->deadline;
  const Priority priority = attempt->priority;
  discovery_.Resolve(server, deadline,
                     [this, attempt](absl::StatusOr<ResolvedServer> resolved) mutable {
                       if (!resolved.ok()) return attempt->done(resolved.status());
                       attempt->request.host_header = resolved->host_header;
                       attempt->request.tls_name = resolved->tls_name;
                       attempt->endpoints = std::move(resolved->endpoints);
                       if (attempt->endpoints.size() >
                           static_cast<size_t>(std::max(1, options_.max_endpoints))) {
                         attempt->endpoints.resize(
                             static_cast<size_t>(std::max(1, options_.max_endpoints)));
                       }
                       TryEndpoint(std::move(attempt), 0);
                     },
                     priority);
}

void FederationClient::TryEndpoint(std::shared_ptr<Attempt> attempt, size_t i) {
  if (i >= attempt->endpoints.size()) {
    if (attempt->failures.empty()) {
      return attempt->done(
          absl::UnavailableError(absl::StrCat(attempt->server.str(), ": no endpoints")));
    }
    return attempt->done(absl::UnavailableError(absl::StrJoin(attempt->failures, "; ")));
  }
  attempt->request.connect_to = attempt->endpoints[i];
  const HttpRequest& request = attempt->request;
  const absl::Time deadline = attempt->deadline;
  HttpClient& http = attempt->priority == Priority::kBulk ? bulk_http_ : interactive_http_;
  http.Send(request, deadline,
             [this, attempt = std::move(attempt), i](absl::StatusOr<HttpResponse> r) mutable {
               if (r.ok()) return attempt->done(std::move(r));
               attempt->failures.push_back(std::string(r.status().message()));
               if (absl::IsDeadlineExceeded(r.status()) || absl::IsCancelled(r.status()) ||
                   absl::IsInvalidArgument(r.status())) {
                 return attempt->done(absl::Status(
                     r.status().code(), absl::StrJoin(attempt->failures, "; ")));
               }
               // Every endpoint failed the same way (e.g. the certificate was
               // refused everywhere): keep the code of the last failure.
               if (i + 1 == attempt->endpoints.size()) {
                 return attempt->done(absl::Status(
                     r.status().code(), absl::StrJoin(attempt->failures, "; ")));
               }
               TryEndpoint(std::move(attempt), i + 1);
             });
}

}  // namespace keyverifier::net
