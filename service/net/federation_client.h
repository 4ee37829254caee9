// FederationClient: one HTTPS request to a Matrix server by its server name:
// discovery (well-known, SRV, addresses), then the endpoints in discovery's
// order until one gives an HTTP answer. Used for direct key fetches and
// notary queries alike.
//
// At most `max_endpoints` endpoints are tried; each attempt has the HTTP
// client's own connect and total budgets, all within the caller's deadline.
// Transport failures are collected into the error; a deadline stops the loop.
//
// At most `max_per_server` requests to one server name are under way at
// once (a notary asked for many batches, say); the others wait their turn
// in order, holding no thread. Many server names behind one address are not
// limited together: the fetch engine's total cap bounds them.
//
// Bulk requests (a batch's many fetches, the refresher's) take at most
// `max_bulk` connections at once, so that a single lookup never queues
// behind a batch waiting on dead servers. Given an HTTP client per priority
// (and a discovery with a lane per priority), each priority's requests run
// on their own client: single lookups never wait behind a batch's work on
// one busy event loop.
//
// Asynchronous (the callback runs once, on the thread that completed the
// last step). Thread-safe; discovery and client are borrowed.
#ifndef KEYVERIFIER_SERVICE_NET_FEDERATION_CLIENT_H_
#define KEYVERIFIER_SERVICE_NET_FEDERATION_CLIENT_H_

#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
#include "service/async/limiter.h"
#include "service/core/server_name.h"
#include "service/net/discovery.h"
#include "service/net/http_client.h"

namespace keyverifier::net {

class FederationClient {
 public:
  struct Options {
    int max_endpoints = 4;
    int max_per_server = 4;
    // Bulk requests under way at once; 0: no limit of their own.
    int max_bulk = 0;
  };
  using Priority = net::Priority;
  FederationClient(ServerDiscovery& discovery, HttpClient& bulk_http,
                   HttpClient& interactive_http, Options options)
      : discovery_(discovery),
        bulk_http_(bulk_http),
        interactive_http_(interactive_http),
        options_(options),
        bulk_(options.max_bulk > 0 ? options.max_bulk : 1) {}
  FederationClient(ServerDiscovery& discovery, HttpClient& http, Options options)
      : FederationClient(discovery, http, http, options) {}
  FederationClient(ServerDiscovery& discovery, HttpClient& http)
      : FederationClient(discovery, http, Options()) {}

  // `request`'s method, path, body, headers and size limit are used; the
  // Host header, TLS name and address come from discovery.
  void Send(const core::ServerName& server, HttpRequest request, absl::Time deadline,
            async::Callback<HttpResponse> done, Priority priority = Priority::kInteractive);
  absl::StatusOr<HttpResponse> SendAndWait(const core::ServerName& server, HttpRequest request,
                                           absl::Time deadline) {
    return async::Wait<HttpResponse>([&](auto cb) {
      Send(server, std::move(request), deadline, std::move(cb));
    });
  }

 private:
  struct Attempt;
  void Admit(std::shared_ptr<Attempt> attempt);
  void ReleaseBulk();
  void Start(std::shared_ptr<Attempt> attempt);
  void TryEndpoint(std::shared_ptr<Attempt> attempt, size_t i);
  // The request is over: the server's next waiting request may start.
  void Release(const core::ServerName& server);

  ServerDiscovery& discovery_;
  HttpClient& bulk_http_;
  HttpClient& interactive_http_;
  const Options options_;
  async::Limiter bulk_;
  absl::Mutex mu_;
  absl::flat_hash_map<core::ServerName, std::unique_ptr<async::Limiter>> per_server_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_FEDERATION_CLIENT_H_
