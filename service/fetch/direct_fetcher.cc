#include "service/fetch/direct_fetcher.h"

#include <memory>

#include "absl/strings/str_cat.h"

namespace keyverifier::fetch {

void DirectFetcher::Fetch(const KeyQuery& request, absl::Time deadline,
                          async::Callback<core::ServerKeys> done) {
  FetchOne(request, deadline, net::FederationClient::Priority::kInteractive, std::move(done));
}

void DirectFetcher::FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                              async::Callback<KeysByServer> done) {
  FetchEach(std::move(requests), std::move(done),
            [this, deadline](const KeyQuery& r, async::Callback<core::ServerKeys> one) {
              FetchOne(r, deadline, net::FederationClient::Priority::kBulk, std::move(one));
            });
}

void DirectFetcher::FetchOne(const KeyQuery& request, absl::Time deadline,
                             net::FederationClient::Priority priority,
                             async::Callback<core::ServerKeys> done) {
  net::HttpRequest http_request;
  http_request.path = "/_matrix/key/v2/server";
  http_request.max_response_bytes = kMaxKeyResponseBytes;
  client_.Send(
      request.server_name, std::move(http_request), deadline,
      [server = request.server_name, max_keys = max_keys_, done = std::move(done)](
          absl::StatusOr<net::HttpResponse> r) mutable {
        if (!r.ok()) return done(r.status());
        if (r->status != 200) {
          return done(absl::UnavailableError(
              absl::StrCat(server.str(), "/_matrix/key/v2/server answered HTTP ", r->status)));
        }
        core::ServerKeyExpectations expect;
        expect.server_name = server.str();
        expect.max_keys = max_keys;
        absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(r->body, expect);
        if (!keys.ok()) {
          // The origin served something unusable: the keys are not
          // obtainable from it, which is not the caller's fault.
          return done(absl::UnavailableError(keys.status().message()));
        }
        done(std::move(keys));
      },
      priority);
}

}  // namespace keyverifier::fetch
