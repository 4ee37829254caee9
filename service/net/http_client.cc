#include "service/net/http_client.h"

#include <curl/curl.h>
#include <openssl/ct.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace keyverifier::net {

namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// libcurl's own timeout ends a transfer that has a connection, with its
// precise message; the engine's deadline, a little later, also ends one still
// queued for a connection slot, which libcurl never times out.
constexpr absl::Duration kQueueGrace = absl::Milliseconds(100);

bool CurlReady() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

// One transfer: what libcurl's callbacks write, and everything libcurl
// points into while it runs. Lives on the heap until its callback has run.
struct Transfer {
  const PeerVerifier* verifier = nullptr;
  std::string tls_name;
  bool handshake_only = false;
  bool captured = false;  // handshake_only: the peer's certificates are in
  size_t max_bytes = 0;
  bool too_large = false;
  HttpResponse response;
  bool peer_checked = false;
  absl::Status peer_status;
  absl::Status context_status;

  // For the result.
  std::string where;  // "GET https://host/path via address"
  absl::Time started;
  absl::Duration budget;
  absl::Duration connect_budget;
  absl::Duration tls_budget;
  absl::Duration left;  // until the caller's deadline, at the start
  async::Callback<HttpResponse> done;

  // Referenced (not copied) by libcurl.
  std::string url;
  std::string body;
  std::unique_ptr<curl_slist, SlistDeleter> connect_to;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  char error[CURL_ERROR_SIZE] = {0};
  // Last: cleaned up first, while what it points to is still there.
  std::unique_ptr<CURL, CurlDeleter> curl;
};

size_t OnBody(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  size_t bytes = size * n;
  if (t->response.body.size() + bytes > t->max_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->response.body.append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->response.headers.clear();  // a new response (after 100 Continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)));
    t->response.headers[name] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

std::string Der(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return {};
  std::string out(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_X509(cert, &p);
  return out;
}

// The SCTs the server sent in the handshake (TLS extension, stapled OCSP),
// as one TLS-encoded list; embedded ones stay in the certificate.
std::vector<std::string> DeliveredScts(X509_STORE_CTX* store) {
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return {};
  const STACK_OF(SCT)* all = SSL_get0_peer_scts(ssl);
  if (all == nullptr) return {};
  STACK_OF(SCT)* delivered = sk_SCT_new_null();
  for (int i = 0; i < sk_SCT_num(all); ++i) {
    SCT* sct = sk_SCT_value(all, i);
    if (SCT_get_source(sct) != SCT_SOURCE_X509V3_EXTENSION) sk_SCT_push(delivered, sct);
  }
  std::vector<std::string> out;
  unsigned char* der = nullptr;
  int len = sk_SCT_num(delivered) > 0 ? i2o_SCT_LIST(delivered, &der) : 0;
  if (len > 0) out.emplace_back(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  sk_SCT_free(delivered);  // the SCTs belong to the connection
  return out;
}

// The protocol version and cipher suite the handshake has settled on by the
// time the server's certificates arrive (both follow its ServerHello).
void NoteNegotiated(X509_STORE_CTX* store, HttpResponse* out) {
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return;
  out->tls_version = SSL_get_version(ssl);
  const SSL_CIPHER* cipher = SSL_get_pending_cipher(ssl);
  if (cipher == nullptr) cipher = SSL_get_current_cipher(ssl);
  if (cipher != nullptr) out->tls_cipher = SSL_CIPHER_get_name(cipher);
}

// Replaces OpenSSL's chain verification: the PeerVerifier decides.
int VerifyChain(X509_STORE_CTX* store, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  NoteNegotiated(store, &t->response);
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(store);
  std::vector<std::string> chain;
  if (leaf != nullptr) chain.push_back(Der(leaf));
  for (int i = 0; sent != nullptr && i < sk_X509_num(sent); ++i) {
    X509* c = sk_X509_value(sent, i);
    if (leaf != nullptr && X509_cmp(c, leaf) == 0) continue;
    chain.push_back(Der(c));
  }
  t->response.peer_chain_der = chain;
  if (t->handshake_only) {  // all that was asked for: end the handshake here
    t->response.peer_scts = DeliveredScts(store);
    t->captured = true;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  t->peer_checked = true;
  t->peer_status = chain.empty()
                       ? absl::PermissionDeniedError("the peer sent no certificate")
                       : t->verifier->VerifyPeer(chain, DeliveredScts(store), t->tls_name);
  if (t->peer_status.ok()) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

CURLcode OnSslContext(CURL*, void* ssl_ctx, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  t->context_status = t->verifier->ConfigureContext(ctx);
  if (!t->context_status.ok()) return CURLE_SSL_CERTPROBLEM;
  SSL_CTX_set_cert_verify_callback(ctx, VerifyChain, t);
  return CURLE_OK;
}

bool HasControl(absl::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x21 || c == 0x7f;
  });
}

// The result of a finished transfer, from its libcurl code.
absl::StatusOr<HttpResponse> Result(Transfer& t, int code) {
  const CURLcode rc = static_cast<CURLcode>(code);
  if (rc == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(t.curl.get(), CURLINFO_RESPONSE_CODE, &status);
    t.response.status = static_cast<int>(status);
    return std::move(t.response);
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    return absl::CancelledError(absl::StrCat(t.where, ": the fetch engine stopped"));
  }
  if (code == FetchEngine::kConnectOverrun) {
    return absl::UnavailableError(absl::StrCat(t.where, ": no connection within ",
                                               absl::FormatDuration(t.connect_budget)));
  }
  if (code == FetchEngine::kRequestOverrun) {
    return absl::UnavailableError(absl::StrCat(t.where, ": timed out after ",
                                               absl::FormatDuration(t.budget)));
  }
  if (code == FetchEngine::kHandshakeOverrun) {
    return absl::UnavailableError(
        absl::StrCat(t.where, ": the TLS handshake did not finish within ",
                     absl::FormatDuration(t.tls_budget), " of connecting"));
  }
  if (t.captured) return std::move(t.response);  // status 0: no HTTP exchange
  if (!t.context_status.ok()) {
    return absl::InternalError(absl::StrCat(t.where, ": ", t.context_status.message()));
  }
  if (t.peer_checked && !t.peer_status.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        t.where, ": certificate rejected for ", t.tls_name, ": ", t.peer_status.message()));
  }
  if (t.too_large) {
    return absl::ResourceExhaustedError(
        absl::StrCat(t.where, ": response larger than ", t.max_bytes, " bytes"));
  }
  std::string detail = t.error[0] != '\0' ? t.error : curl_easy_strerror(rc);
  curl_off_t connect_us = 0;
  curl_easy_getinfo(t.curl.get(), CURLINFO_CONNECT_TIME_T, &connect_us);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    // Only the caller's deadline times a transfer out this way (the request's
    // own budget is the engine's kRequestOverrun): the engine's timer, or
    // libcurl's backstop (which may name a resolve step it never needed).
    // Say how far it got.
    return absl::DeadlineExceededError(
        absl::StrCat(t.where, ": timed out after ", absl::FormatDuration(t.left),
                     connect_us > 0 ? "" : ", before any connection was made"));
  }
  return absl::UnavailableError(absl::StrCat(t.where, ": ", detail));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CurlHttpClient>> CurlHttpClient::Create(
    FetchEngine& engine, const PeerVerifier& verifier, const IpFilter& filter,
    Options options) {
  if (!CurlReady()) return absl::InternalError("libcurl could not be initialised");
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.tls_handshake_timeout <= absl::ZeroDuration() ||
      options.total_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("HTTP timeouts must be positive");
  }
  return std::unique_ptr<CurlHttpClient>(
      new CurlHttpClient(engine, verifier, filter, std::move(options)));
}

void CurlHttpClient::Send(const HttpRequest& request, absl::Time deadline,
                          async::Callback<HttpResponse> done) {
  const std::string target = request.connect_to.ToString();
  if (request.host_header.empty() || HasControl(request.host_header)) {
    return done(absl::InvalidArgumentError("HTTP request: bad Host header"));
  }
  if (!absl::StartsWith(request.path, "/") || HasControl(request.path)) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("HTTP request: bad path \"", request.path, "\"")));
  }
  for (const auto& [name, value] : request.headers) {
    if (HasControl(name) || value.find_first_of("\r\n") != std::string::npos) {
      return done(absl::InvalidArgumentError(absl::StrCat("HTTP request: bad header ", name)));
    }
  }
  if (std::optional<std::string> why = filter_.Refusal(request.connect_to.address)) {
    return done(absl::PermissionDeniedError(
        absl::StrCat("not connecting to ", target, ": ", *why)));
  }
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    return done(absl::DeadlineExceededError(
        absl::StrCat("deadline passed before connecting to ", target)));
  }
  // The request's own budget runs from its connection attempt (the engine's
  // phases); time queued for a connection slot counts only towards the
  // caller's deadline, which bounds everything.
  const absl::Duration budget = std::min(left, options_.total_timeout);

  auto t = std::make_unique<Transfer>();
  t->curl.reset(curl_easy_init());
  if (t->curl == nullptr) return done(absl::InternalError("curl_easy_init failed"));
  CURL* c = t->curl.get();
  t->verifier = &verifier_;
  t->tls_name = request.tls_name;
  t->handshake_only = request.handshake_only;
  t->response.tls_name = request.tls_name;
  t->response.endpoint = target;
  t->max_bytes = request.max_response_bytes;
  t->where = absl::StrCat(request.method, " https://", request.host_header, request.path,
                          " via ", target);
  t->started = absl::Now();
  t->budget = budget;
  t->connect_budget = std::min(budget, options_.connect_timeout);
  t->tls_budget = options_.tls_handshake_timeout;
  t->left = left;
  t->done = std::move(done);
  t->url = absl::StrCat("https://", request.host_header, request.path);
  t->body = request.body;

  // Connect to the discovered address whatever the URL's name resolves to.
  t->connect_to.reset(curl_slist_append(nullptr, absl::StrCat("::", target).c_str()));
  t->headers.reset(
      curl_slist_append(nullptr, absl::StrCat("Host: ", request.host_header).c_str()));
  for (const auto& [name, value] : request.headers) {
    t->headers.reset(
        curl_slist_append(t->headers.release(), absl::StrCat(name, ": ", value).c_str()));
  }
  if (!t->body.empty()) {
    t->headers.reset(curl_slist_append(t->headers.release(), "Content-Type: application/json"));
  }

  curl_easy_setopt(c, CURLOPT_URL, t->url.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECT_TO, t->connect_to.get());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers.get());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  // libcurl's connect timeout covers TCP and TLS together; the engine
  // holds each to its own budget (AddTransfer's phases).
  // libcurl counts time queued for a connection slot too: its own timeouts
  // are set to the caller's deadline, a backstop behind the engine's.
  const long backstop = static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left)));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, backstop);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, backstop);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, t.get());
  // The PeerVerifier is the only judge of the certificate: libcurl's checks
  // stay on (so a rejection aborts the handshake) but its own CA bundle and
  // name check are replaced. No session reuse and no connection reuse: a
  // resumed session or a connection another transfer opened would skip the
  // check.
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(c, CURLOPT_CAINFO, nullptr);
  curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
  curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, OnSslContext);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, t.get());
  if (request.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (!t->body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, t->body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(t->body.size()));
  }

  const absl::Time end = absl::Now() + left + kQueueGrace;
  // Only budgets shorter than what is left: at the deadline the caller's
  // deadline is what ran out, not the server's.
  FetchEngine::Phases phases;
  if (t->connect_budget < left) phases.connect = t->connect_budget;
  if (t->tls_budget < left) phases.tls_handshake = t->tls_budget;
  if (options_.total_timeout < left) phases.request = options_.total_timeout;
  engine_.AddTransfer(c, end, phases, [t = std::move(t)](int code) mutable {
    absl::StatusOr<HttpResponse> result = Result(*t, code);
    async::Callback<HttpResponse> done = std::move(t->done);
    t.reset();  // the handle is out of the engine: free it before answering
    done(std::move(result));
  });
}

}  // namespace keyverifier::net
