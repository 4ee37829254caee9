#include "service/fetch/direct_fetcher.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyverifier::fetch {

absl::StatusOr<net::HttpResponse> SendToServer(net::ServerDiscovery& discovery,
                                               net::HttpClient& http,
                                               absl::string_view server,
                                               net::HttpRequest request,
                                               absl::Time deadline) {
  absl::StatusOr<net::ResolvedServer> resolved = discovery.Resolve(server, deadline);
  if (!resolved.ok()) return resolved.status();
  request.host_header = resolved->host_header;
  request.tls_name = resolved->tls_name;
  std::vector<std::string> failures;
  absl::Status last;
  for (const net::Endpoint& e : resolved->endpoints) {
    request.connect_to = e;
    absl::StatusOr<net::HttpResponse> r = http.Send(request, deadline);
    if (r.ok()) return r;
    last = r.status();
    failures.push_back(std::string(r.status().message()));
    if (absl::IsDeadlineExceeded(last)) break;
  }
  if (failures.empty()) return absl::UnavailableError(absl::StrCat(server, ": no endpoints"));
  return absl::Status(last.code(), absl::StrJoin(failures, "; "));
}

absl::StatusOr<core::ServerKeys> DirectFetcher::Fetch(const KeyRequest& request,
                                                      absl::Time deadline) {
  net::HttpRequest http_request;
  http_request.path = "/_matrix/key/v2/server";
  http_request.max_response_bytes = kMaxKeyResponseBytes;
  absl::StatusOr<net::HttpResponse> r =
      SendToServer(discovery_, http_, request.server_name, http_request, deadline);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return absl::UnavailableError(absl::StrCat(
        request.server_name, "/_matrix/key/v2/server answered HTTP ", r->status));
  }
  core::ServerKeyExpectations expect;
  expect.server_name = request.server_name;
  absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(r->body, expect);
  if (!keys.ok()) {
    // The origin served something unusable: the keys are not obtainable
    // from it, which is not the caller's fault.
    return absl::UnavailableError(keys.status().message());
  }
  return keys;
}

}  // namespace keyverifier::fetch
