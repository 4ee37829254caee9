#include "service/tls/certificate_checker.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/server_name.h"
#include "service/net/ip_address.h"
#include "service/tls/policy_peer_verifier.h"

namespace keyverifier::tls {
namespace {

absl::StatusOr<std::string> HostOf(absl::string_view server_name) {
  absl::StatusOr<core::ServerName> name = core::ParseServerName(server_name);
  if (!name.ok()) return name.status();
  return name->host;
}

}  // namespace

absl::StatusOr<CertificateCheck> CertificateChecker::CheckOffered(
    absl::string_view server_name, const std::vector<std::string>& chain,
    absl::Time at) const {
  absl::StatusOr<std::string> host = HostOf(server_name);
  if (!host.ok()) return host.status();
  absl::StatusOr<PeerName> peer = PeerName::Parse(*host);
  if (!peer.ok()) return peer.status();
  CertificateCheck out;
  out.checked_name = *host;
  absl::StatusOr<std::vector<X509Ptr>> certs = ParseChain(chain, "chain");
  if (!certs.ok()) {  // not certificates: a verdict of its own
    AddFinding(&out.verdict.reasons, Reason::kMalformed, std::string(certs.status().message()));
    return out;
  }
  CheckContext context;
  if (fingerprints_) context.fingerprint_source = [&] { return fingerprints_(*host); };
  out.verdict = policy_.Check(*certs, *peer, at, context);
  return out;
}

// One live check: the handshakes' judge and the client that makes them live
// until the last callback.
struct CertificateChecker::Live {
  Live(const CertificatePolicy& policy, const Clock& clock, absl::Time at,
       FingerprintSource fingerprints)
      : recorder(policy, clock, at, std::move(fingerprints)) {}
  PolicyPeerVerifier recorder;
  std::unique_ptr<net::CurlHttpClient> http;
  std::string server_name;
  net::ResolvedServer resolved;
  absl::Time deadline;
  std::vector<std::string> failures;
  async::Callback<CertificateCheck> done;
};

void CertificateChecker::CheckLive(absl::string_view server_name, uint16_t port, absl::Time at,
                                   absl::Time deadline,
                                   async::Callback<CertificateCheck> done) const {
  if (discovery_ == nullptr || options_.engine == nullptr) {
    return done(
        absl::FailedPreconditionError("live certificate checks need outbound fetching enabled"));
  }
  std::string name(server_name);
  if (port != 0) {
    absl::StatusOr<std::string> host = HostOf(server_name);
    if (!host.ok()) return done(host.status());
    name = net::HostPort(*host, port);
  }
  auto live = std::make_shared<Live>(policy_, clock_, at, fingerprints_);
  net::CurlHttpClient::Options http_options;
  http_options.connect_timeout = options_.connect_timeout;
  absl::StatusOr<std::unique_ptr<net::CurlHttpClient>> http =
      net::CurlHttpClient::Create(*options_.engine, live->recorder, filter_, http_options);
  if (!http.ok()) return done(http.status());
  live->http = *std::move(http);
  live->server_name = std::string(server_name);
  live->deadline = deadline;
  live->done = std::move(done);
  discovery_->Resolve(name, deadline, [this, live](absl::StatusOr<net::ResolvedServer> r) {
    if (!r.ok()) return live->done(r.status());
    live->resolved = *std::move(r);
    TryEndpoint(live, 0);
  });
}

void CertificateChecker::TryEndpoint(std::shared_ptr<Live> live, size_t i) const {
  if (i >= live->resolved.endpoints.size()) {
    return live->done(absl::UnavailableError(absl::StrCat(
        "no TLS handshake with ", live->server_name, ": ", absl::StrJoin(live->failures, "; "))));
  }
  net::HttpRequest req;
  req.host_header = live->resolved.host_header;
  req.tls_name = live->resolved.tls_name;
  req.connect_to = live->resolved.endpoints[i];
  req.path = "/_matrix/federation/v1/version";
  req.max_response_bytes = 64 * 1024;
  live->http->Send(req, live->deadline, [this, live, i](absl::StatusOr<net::HttpResponse> r) {
    if (std::optional<Verdict> v = live->recorder.last_verdict()) {
      CertificateCheck out;
      out.verdict = *std::move(v);
      out.checked_name = live->resolved.tls_name;
      out.endpoint = live->resolved.endpoints[i].ToString();
      return live->done(std::move(out));
    }
    live->failures.push_back(std::string(r.status().message()));
    if (absl::IsDeadlineExceeded(r.status()) || absl::IsCancelled(r.status())) {
      return live->done(absl::UnavailableError(
          absl::StrCat("no TLS handshake with ", live->server_name, ": ",
                       absl::StrJoin(live->failures, "; "))));
    }
    TryEndpoint(live, i + 1);
  });
}

}  // namespace keyverifier::tls
