// HttpListener: a small public-facing HTTP/1.1 server (libevent's evhttp,
// HTTPS through OpenSSL when a certificate is given) on one event-loop
// thread. A request is handed to the handler with a Respond callback that
// may be called later, from any thread; no thread waits while the answer is
// being worked out.
//
// Hardening: request bodies and headers are size-limited, idle and slow
// connections time out, only the configured methods are accepted, each
// client address has a token bucket (429 M_LIMIT_EXCEEDED beyond it), and the
// number of requests awaiting an answer is bounded (503 beyond it). At Stop
// every request still waiting is answered 503.
//
// Thread-safe: Respond may be called from any thread, at most once, also
// after Stop (it is then ignored). Errors from Start: InvalidArgumentError for
// a bad address, certificate, key or proxy network; UnavailableError when the
// port cannot be bound.
#ifndef KEYVERIFIER_SERVICE_NOTARY_HTTP_LISTENER_H_
#define KEYVERIFIER_SERVICE_NOTARY_HTTP_LISTENER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/clock/clock.h"
#include "service/tls/serving_certificate.h"

namespace keyverifier::notary {

struct HttpRequest {
  std::string method;  // "GET", "POST"
  std::string path;    // as sent (percent-encoded), without the query
  std::string query;   // after '?', as sent; empty if none
  std::string body;
  std::string client;  // the peer's address
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

using Respond = absl::AnyInvocable<void(HttpResponse) &&>;
using HttpHandler = std::function<void(HttpRequest, Respond)>;

class HttpListener {
 public:
  struct Options {
    std::string listen;  // HOST:PORT; port 0 picks one
    // PEM files; both empty: plain HTTP (behind a reverse proxy).
    std::string cert_file;
    std::string key_file;
    // With HTTPS: the files are read again this often (zero: only at
    // Start). A renewed pair that checks out serves new connections; one
    // that does not is refused and the current one stays.
    absl::Duration reload_interval = absl::ZeroDuration();
    // Told of the certificate loaded at Start (on the caller's thread) and
    // of every reload that changed or refused it (on the loop thread).
    std::function<void(tls::ServingCertificateWatcher::Outcome,
                       const tls::ServingCertificateWatcher&)>
        on_certificate;
    io::ReadFile read_file;  // empty: from disk
    size_t max_body_bytes = 64 << 10;
    size_t max_header_bytes = 16 << 10;
    absl::Duration timeout = absl::Seconds(30);  // read/write/idle, per connection
    double requests_per_second = 10;             // per client address
    double burst = 50;
    size_t max_pending = 1024;  // requests awaiting an answer, all clients
    // Reverse proxies (CIDR, e.g. "127.0.0.1/32") whose requests name the
    // client in X-Forwarded-For: the address the proxy saw (the last one
    // listed) is the client, for the rate limit. Others' headers are ignored.
    std::vector<std::string> trusted_proxies;
  };

  // Binds and starts the loop thread.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(const Options& options,
                                                             HttpHandler handler,
                                                             const Clock& clock);
  ~HttpListener();  // Stop()

  int port() const;
  // Answers every request still waiting with 503, stops the loop and joins
  // its thread. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyverifier::notary

#endif  // KEYVERIFIER_SERVICE_NOTARY_HTTP_LISTENER_H_
