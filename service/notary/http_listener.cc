#include "service/notary/http_listener.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/clock/token_bucket.h"
#include "service/net/ip_address.h"
#include "service/notary/protocol.h"
#include "service/io/file.h"
#include "service/tls/serving_certificate.h"
#include "service/tls/openssl_util.h"

namespace keyverifier::notary {
namespace {

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using EventBasePtr = std::unique_ptr<event_base, Free<event_base, event_base_free>>;
using EvhttpPtr = std::unique_ptr<evhttp, Free<evhttp, evhttp_free>>;
using EventPtr = std::unique_ptr<event, Free<event, event_free>>;

HttpResponse Error(int status, const char* errcode, const char* error) {
  return {status, ErrorBody({status, errcode, error})};
}

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", listen, "\" is not HOST:PORT"));
  }
  std::string host(listen.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

}  // namespace

// Everything a Respond callback may touch after the listener is gone.
struct Mailbox {
  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
  std::deque<std::pair<uint64_t, HttpResponse>> ready ABSL_GUARDED_BY(mu);
  event* wake ABSL_GUARDED_BY(mu) = nullptr;  // activated to hand `ready` to the loop
};

class HttpListener::Impl {
 public:
  Impl(const Options& options, HttpHandler handler, const Clock& clock)
      : options_(options), handler_(std::move(handler)), clock_(clock) {}

  ~Impl() { Stop(); }

  absl::Status Init() {
    static std::once_flag threads;
    std::call_once(threads, [] { evthread_use_pthreads(); });
    absl::StatusOr<std::pair<std::string, uint16_t>> address = SplitHostPort(options_.listen);
    if (!address.ok()) return address.status();
    for (const std::string& cidr : options_.trusted_proxies) {
      absl::StatusOr<net::IpNetwork> n = net::ParseIpNetwork(cidr);
      if (!n.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("trusted proxy \"", cidr, "\": ", n.status().message()));
      }
      proxies_.push_back(*n);
    }
    if (options_.cert_file.empty() != options_.key_file.empty()) {
      return absl::InvalidArgumentError("cert_file and key_file go together");
    }
    if (!options_.cert_file.empty()) {
      absl::StatusOr<tls::ServingCertificateWatcher> watcher = tls::ServingCertificateWatcher::Create(
          {options_.cert_file, options_.key_file, ""},
          options_.read_file ? options_.read_file : io::ReadFileFromDisk);
      if (!watcher.ok()) return watcher.status();
      absl::StatusOr<tls::SslCtxPtr> ctx = tls::NewServerContext(watcher->current());
      if (!ctx.ok()) return ctx.status();
      ssl_ctx_ = *std::move(ctx);
      certificate_.emplace(*std::move(watcher));
      if (options_.on_certificate) {
        options_.on_certificate(tls::ServingCertificateWatcher::Outcome::kChanged, *certificate_);
      }
    }
    base_.reset(event_base_new());
    if (base_ == nullptr) return absl::InternalError("event_base_new failed");
    http_.reset(evhttp_new(base_.get()));
    if (http_ == nullptr) return absl::InternalError("evhttp_new failed");
    evhttp_set_max_body_size(http_.get(), static_cast<ev_ssize_t>(options_.max_body_bytes));
    evhttp_set_max_headers_size(http_.get(), static_cast<ev_ssize_t>(options_.max_header_bytes));
    const absl::Duration t = options_.timeout;
    timeval tv = absl::ToTimeval(t);
    evhttp_set_timeout_tv(http_.get(), &tv);
    evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_default_content_type(http_.get(), "application/json");
    evhttp_set_gencb(http_.get(), &Impl::OnRequest, this);
    if (ssl_ctx_ != nullptr) evhttp_set_bevcb(http_.get(), &Impl::NewTlsBufferevent, this);
    bound_ = evhttp_bind_socket_with_handle(http_.get(), address->first.c_str(), address->second);
    evhttp_bound_socket* bound = bound_;
    if (bound == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    wake_.reset(event_new(base_.get(), -1, 0, &Impl::OnWake, this));
    if (certificate_.has_value() && options_.reload_interval > absl::ZeroDuration()) {
      reload_.reset(event_new(base_.get(), -1, EV_PERSIST, &Impl::OnReload, this));
      const timeval every = absl::ToTimeval(options_.reload_interval);
      event_add(reload_.get(), &every);
    }
    {
      absl::MutexLock lock(&mailbox_->mu);
      mailbox_->wake = wake_.get();
    }
    thread_ = std::thread([this] { event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY); });
    return absl::OkStatus();
  }

  int port() const { return port_; }

  void Stop() {
    {
      absl::MutexLock lock(&mailbox_->mu);
      if (!mailbox_->open) return;
      mailbox_->open = false;
      if (mailbox_->wake != nullptr) event_active(mailbox_->wake, 0, 0);
      mailbox_->wake = nullptr;
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  static bufferevent* NewTlsBufferevent(event_base* base, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    SSL* ssl = SSL_new(self->ssl_ctx_.get());
    if (ssl == nullptr) return nullptr;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
  }

  // On the loop thread: new connections get a renewed certificate; those
  // open keep the one they were made with.
  static void OnReload(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    tls::ServingCertificateWatcher& watcher = *self->certificate_;
    tls::ServingCertificateWatcher::Outcome outcome = watcher.Check();
    if (outcome == tls::ServingCertificateWatcher::Outcome::kChanged) {
      absl::StatusOr<tls::SslCtxPtr> ctx = tls::NewServerContext(watcher.current());
      if (ctx.ok()) {
        self->ssl_ctx_ = *std::move(ctx);
      } else {
        outcome = tls::ServingCertificateWatcher::Outcome::kRefused;
      }
    }
    if (outcome != tls::ServingCertificateWatcher::Outcome::kUnchanged &&
        self->options_.on_certificate) {
      self->options_.on_certificate(outcome, watcher);
    }
  }

  static void OnRequest(evhttp_request* req, void* arg) { static_cast<Impl*>(arg)->Handle(req); }

  // On the loop thread.
  void Handle(evhttp_request* req) {
    HttpRequest r;
    switch (evhttp_request_get_command(req)) {
      case EVHTTP_REQ_GET: r.method = "GET"; break;
      case EVHTTP_REQ_POST: r.method = "POST"; break;
      default: r.method = "OTHER"; break;
    }
    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
    if (const char* p = evhttp_uri_get_path(uri)) r.path = p;
    if (const char* q = evhttp_uri_get_query(uri)) r.query = q;
    if (evhttp_connection* conn = evhttp_request_get_connection(req)) {
      char* peer = nullptr;
      uint16_t peer_port = 0;
      evhttp_connection_get_peer(conn, &peer, &peer_port);
      if (peer != nullptr) r.client = peer;
    }
    r.client = ClientOf(r.client, evhttp_find_header(evhttp_request_get_input_headers(req),
                                                     "X-Forwarded-For"));
    if (!Admit(r.client)) {
      Reply(req, Error(429, "M_LIMIT_EXCEEDED", "too many requests from this address"));
      return;
    }
    if (pending_.size() >= options_.max_pending) {
      Reply(req, Error(503, "M_UNKNOWN", "too many requests in progress; try again later"));
      return;
    }
    evbuffer* in = evhttp_request_get_input_buffer(req);
    const size_t n = evbuffer_get_length(in);
    r.body.resize(n);
    if (n > 0) evbuffer_copyout(in, r.body.data(), n);
    const uint64_t id = next_id_++;
    pending_.emplace(id, req);
    std::shared_ptr<Mailbox> mailbox = mailbox_;
    handler_(std::move(r), [mailbox, id](HttpResponse response) mutable {
      absl::MutexLock lock(&mailbox->mu);
      if (!mailbox->open) return;
      mailbox->ready.emplace_back(id, std::move(response));
      event_active(mailbox->wake, 0, 0);
    });
  }

  // The client behind a trusted proxy: the last address of its
  // X-Forwarded-For (the one the proxy itself saw); else the peer.
  std::string ClientOf(const std::string& peer, const char* forwarded) const {
    if (forwarded == nullptr || proxies_.empty()) return peer;
    absl::StatusOr<net::IpAddress> from = net::ParseIpAddress(peer);
    if (!from.ok() || std::none_of(proxies_.begin(), proxies_.end(),
                                   [&](const net::IpNetwork& n) { return n.Contains(*from); })) {
      return peer;
    }
    absl::string_view last = forwarded;
    if (size_t comma = last.rfind(','); comma != absl::string_view::npos) {
      last = last.substr(comma + 1);
    }
    absl::StatusOr<net::IpAddress> client = net::ParseIpAddress(absl::StripAsciiWhitespace(last));
    return client.ok() ? client->ToString() : peer;
  }

  // A token for `client`; the table forgets idle clients when it grows.
  bool Admit(const std::string& client) {
    const absl::Time now = clock_.Now();
    if (buckets_.size() >= kMaxClients) {
      for (auto it = buckets_.begin(); it != buckets_.end();) {
        auto here = it++;
        if (now - here->second.last > absl::Minutes(1)) buckets_.erase(here);
      }
      if (buckets_.size() >= kMaxClients) buckets_.clear();
    }
    auto [it, inserted] =
        buckets_.try_emplace(client, Client{TokenBucket(options_.requests_per_second, options_.burst), now});
    it->second.last = now;
    return it->second.bucket.TryTake(now);
  }

  static void OnWake(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->Drain(); }

  void Drain() {
    std::deque<std::pair<uint64_t, HttpResponse>> ready;
    bool open;
    {
      absl::MutexLock lock(&mailbox_->mu);
      ready.swap(mailbox_->ready);
      open = mailbox_->open;
    }
    for (auto& [id, response] : ready) {
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      Reply(it->second, response);
      pending_.erase(it);
    }
    if (!open && !stopping_) {
      // No new connections; the requests still waiting get a 503, and the
      // loop runs until those answers are out (at most a second).
      stopping_ = true;
      evhttp_del_accept_socket(http_.get(), bound_);
      for (auto& [id, req] : pending_) {
        ++unsent_;
        evhttp_request_set_on_complete_cb(req, &Impl::OnSent, this);
        Reply(req, Error(503, "M_UNKNOWN", "the server is shutting down"));
      }
      pending_.clear();
      if (unsent_ == 0) {
        event_base_loopexit(base_.get(), nullptr);
      } else {
        const timeval second{1, 0};
        event_base_loopexit(base_.get(), &second);
      }
    }
  }

  static void OnSent(evhttp_request*, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    if (--self->unsent_ == 0) event_base_loopexit(self->base_.get(), nullptr);
  }

  static void Reply(evhttp_request* req, const HttpResponse& response) {
    evkeyvalq* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", response.content_type.c_str());
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, response.body.data(), response.body.size());
    evhttp_send_reply(req, response.status, nullptr, out);
    evbuffer_free(out);
  }

  static constexpr size_t kMaxClients = 65536;
  struct Client {
    TokenBucket bucket;
    absl::Time last;
  };

  const Options options_;
  HttpHandler handler_;
  const Clock& clock_;
  std::vector<net::IpNetwork> proxies_;
  tls::SslCtxPtr ssl_ctx_;
  EventBasePtr base_;
  EvhttpPtr http_;  // freed before base_ (declared after it)
  EventPtr wake_;
  EventPtr reload_;
  // The certificate files, with HTTPS; loop thread only after Init.
  std::optional<tls::ServingCertificateWatcher> certificate_;
  int port_ = 0;
  std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>();
  std::thread thread_;
  // Loop thread only.
  uint64_t next_id_ = 1;
  evhttp_bound_socket* bound_ = nullptr;
  bool stopping_ = false;
  int unsent_ = 0;  // 503s of the shutdown not yet sent
  absl::flat_hash_map<uint64_t, evhttp_request*> pending_;
  absl::flat_hash_map<std::string, Client> buckets_;
};

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(const Options& options,
                                                                  HttpHandler handler,
                                                                  const Clock& clock) {
  auto impl = std::make_unique<Impl>(options, std::move(handler), clock);
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<HttpListener>(new HttpListener(std::move(impl)));
}

HttpListener::HttpListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpListener::~HttpListener() { Stop(); }
int HttpListener::port() const { return impl_->port(); }
void HttpListener::Stop() { impl_->Stop(); }

}  // namespace keyverifier::notary
