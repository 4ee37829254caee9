// DirectFetcher: GET /_matrix/key/v2/server from the origin, found by server
// discovery and reached through the HTTP client (certificate policy and
// address filter included). Endpoints are tried in discovery's order until
// one answers; the response must be for the server asked and pass the core's
// validation. Thread-safe; everything is borrowed.
#ifndef KEYVERIFIER_SERVICE_FETCH_DIRECT_FETCHER_H_
#define KEYVERIFIER_SERVICE_FETCH_DIRECT_FETCHER_H_

#include <string>

#include "service/fetch/key_fetcher.h"
#include "service/net/discovery.h"
#include "service/net/http_client.h"

namespace keyverifier::fetch {

// The largest key response accepted.
inline constexpr size_t kMaxKeyResponseBytes = 256 * 1024;

class DirectFetcher final : public KeyFetcher {
 public:
  DirectFetcher(net::ServerDiscovery& discovery, net::HttpClient& http)
      : discovery_(discovery), http_(http) {}

  const std::string& source() const override { return source_; }
  absl::StatusOr<core::ServerKeys> Fetch(const KeyRequest& request,
                                         absl::Time deadline) override;

 private:
  net::ServerDiscovery& discovery_;
  net::HttpClient& http_;
  const std::string source_ = "origin";
};

// Sends `request` to each endpoint of `server` in turn until one gives an
// HTTP answer; shared by the direct and notary fetchers. Transport failures
// are collected into the error.
absl::StatusOr<net::HttpResponse> SendToServer(net::ServerDiscovery& discovery,
                                               net::HttpClient& http,
                                               absl::string_view server,
                                               net::HttpRequest request,
                                               absl::Time deadline);

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_DIRECT_FETCHER_H_
