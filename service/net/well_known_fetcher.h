// HttpsWellKnownFetcher: GET https://<hostname>/.well-known/matrix/server over
// the HttpClient, so the certificate policy and the outbound address filter
// apply here too.
//
// Redirects are followed here only (up to a limit, never in a loop, https
// only); each hop's host is resolved again and its addresses filtered. The
// body is size-limited (kMaxWellKnownBytes).
//
// Asynchronous: every step (the lookup, each address tried in turn, each
// redirect) continues in the previous step's callback; no thread waits. The
// callback runs once, on the thread that completed the last step.
//
// Thread-safe; the client and resolver are borrowed and must outlive every
// fetch in flight. Errors as HttpClient's, plus NotFoundError when the host
// has no addresses and UnavailableError for a bad redirect.
#ifndef KEYVERIFIER_SERVICE_NET_WELL_KNOWN_FETCHER_H_
#define KEYVERIFIER_SERVICE_NET_WELL_KNOWN_FETCHER_H_

#include <cstdint>
#include <string>

#include "service/async/callback.h"
#include "service/net/discovery.h"
#include "service/net/http_client.h"
#include "service/net/resolver.h"

namespace keyverifier::net {

class HttpsWellKnownFetcher final : public WellKnownFetcher {
 public:
  struct Options {
    int max_redirects = 5;
    // The port of https://<hostname>/ (443); tests point it elsewhere.
    uint16_t port = 443;
  };
  HttpsWellKnownFetcher(HttpClient& http, Resolver& resolver, Options options)
      : http_(http), resolver_(resolver), options_(options) {}

  void Fetch(absl::string_view hostname, absl::Time deadline,
             async::Callback<WellKnownResponse> done) override;

 private:
  HttpClient& http_;
  Resolver& resolver_;
  const Options options_;
};

// Where a redirect points, resolved against the URL it came from (libcurl's
// URL parser): scheme, host (IPv6 without brackets), port and path+query.
struct UrlParts {
  std::string scheme;
  std::string host;
  uint16_t port = 0;
  std::string path;  // with the query, if any
};
absl::StatusOr<UrlParts> ResolveUrl(absl::string_view base, absl::string_view location);

// Percent-encodes `s` for a URL path segment (libcurl's escaping).
std::string UrlEscape(absl::string_view s);

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_WELL_KNOWN_FETCHER_H_
