// HttpClient: one outbound HTTPS request to an address chosen by server
// discovery, with the Host header and certificate name discovery gave.
//
// Asynchronous: Send returns at once and its callback is invoked exactly
// once, on the FetchEngine's loop for the real client, or inline on the
// caller's thread for a request that never starts (invalid, refused by the
// filter, past its deadline, the engine stopped); a fake may answer inline.
// No thread waits on the peer. CurlHttpClient runs its transfers on the
// FetchEngine (libcurl's multi interface); it connects to `connect_to` while
// the URL carries the Host header's name (so SNI is that name, and no SNI is
// sent for an IP literal), hands the peer's chain to the PeerVerifier
// (libcurl's own checks are off: the policy is the only judge), and enforces
// the connect and total timeouts and the response size limit. It never
// follows redirects, uses no proxy and speaks only HTTPS. Every request
// checks its address against the IpFilter first, and opens a connection of
// its own (no reuse, no shared HTTP/2 connection, no TLS session resumption),
// so every request's handshake is judged. A request queued behind the
// engine's connection limits still ends when its time budget does.
//
// Thread-safe. Errors: PermissionDeniedError (address refused by the filter,
// or the certificate rejected: the message says why), UnavailableError
// (connect or transport failure), DeadlineExceededError (timeout),
// ResourceExhaustedError (response larger than the limit),
// InvalidArgumentError (unusable request), CancelledError (the engine
// stopped: shutdown).
#ifndef KEYVERIFIER_SERVICE_NET_HTTP_CLIENT_H_
#define KEYVERIFIER_SERVICE_NET_HTTP_CLIENT_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
#include "service/net/discovery.h"
#include "service/net/fetch_engine.h"
#include "service/net/ip_filter.h"
#include "service/net/peer_verifier.h"

namespace keyverifier::net {

struct HttpRequest {
  std::string method = "GET";
  std::string host_header;  // "example.org", "example.org:8448", "[::1]:8448"
  std::string path;         // "/_matrix/key/v2/server"
  Endpoint connect_to;
  std::string tls_name;     // the name the certificate must be valid for
  std::string body;         // sent as application/json when not empty
  std::vector<std::pair<std::string, std::string>> headers;
  size_t max_response_bytes = 1 << 20;
  // Stop once the peer has presented its certificates: nothing is sent, and
  // the answer (status 0) carries the chain and SCTs whatever the
  // PeerVerifier would have said of them, for a caller that reports on the
  // certificate rather than trusting the peer (CheckCertificate's live
  // mode). The minimum TLS version and the rest of the context still apply.
  bool handshake_only = false;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  // Lower-case names; the last value of a repeated header wins.
  std::map<std::string, std::string> headers;
  // The certificates the peer presented, leaf first (DER), and the name
  // they were checked for (the request's tls_name).
  std::vector<std::string> peer_chain_der;
  std::string tls_name;
  // The Certificate Transparency SCT lists the peer delivered in the
  // handshake (TLS-encoded); set for handshake_only requests.
  std::vector<std::string> peer_scts;
  // The address connected to ("192.0.2.1:8448").
  std::string endpoint;
  // What the handshake negotiated ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
  // as known when the peer's certificates arrived.
  std::string tls_version;
  std::string tls_cipher;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual void Send(const HttpRequest& request, absl::Time deadline,
                    async::Callback<HttpResponse> done) = 0;
  // Blocking form, for tools and tests.
  absl::StatusOr<HttpResponse> SendAndWait(const HttpRequest& request, absl::Time deadline) {
    return async::Wait<HttpResponse>(
        [&](auto cb) { Send(request, deadline, std::move(cb)); });
  }
};

class CurlHttpClient final : public HttpClient {
 public:
  struct Options {
    // Budgets per endpoint: the TCP connection, then the TLS handshake
    // (from the moment the connection is made), and the whole request.
    absl::Duration connect_timeout = absl::Seconds(5);
    absl::Duration tls_handshake_timeout = absl::Seconds(5);
    absl::Duration total_timeout = absl::Seconds(30);
    std::string user_agent = "keyverifier";
  };
  // `engine`, `verifier` and `filter` are borrowed and must outlive the
  // client; the engine and the verifier also every request in flight (which
  // holds nothing else of the client's, so the client may go first).
  static absl::StatusOr<std::unique_ptr<CurlHttpClient>> Create(
      FetchEngine& engine, const PeerVerifier& verifier, const IpFilter& filter,
      Options options);

  void Send(const HttpRequest& request, absl::Time deadline,
            async::Callback<HttpResponse> done) override;

 private:
  CurlHttpClient(FetchEngine& engine, const PeerVerifier& verifier, const IpFilter& filter,
                 Options options)
      : engine_(engine), verifier_(verifier), filter_(filter), options_(std::move(options)) {}
  FetchEngine& engine_;
  const PeerVerifier& verifier_;
  const IpFilter& filter_;
  const Options options_;
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_HTTP_CLIENT_H_
