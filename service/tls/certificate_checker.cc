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

absl::StatusOr<CertificateCheck> CertificateChecker::CheckLive(absl::string_view server_name,
                                                               uint16_t port, absl::Time at,
                                                               absl::Time deadline) const {
  if (discovery_ == nullptr || options_.engine == nullptr) {
    return absl::FailedPreconditionError("live certificate checks need outbound fetching enabled");
  }
  std::string name(server_name);
  if (port != 0) {
    absl::StatusOr<std::string> host = HostOf(server_name);
    if (!host.ok()) return host.status();
    name = net::HostPort(*host, port);
  }
  absl::StatusOr<net::ResolvedServer> resolved = discovery_->ResolveAndWait(name, deadline);
  if (!resolved.ok()) return resolved.status();
  PolicyPeerVerifier recorder(policy_, clock_, at, fingerprints_);
  net::CurlHttpClient::Options http_options;
  http_options.connect_timeout = options_.connect_timeout;
  absl::StatusOr<std::unique_ptr<net::CurlHttpClient>> http =
      net::CurlHttpClient::Create(*options_.engine, recorder, filter_, http_options);
  if (!http.ok()) return http.status();
  std::vector<std::string> failures;
  for (const net::Endpoint& e : resolved->endpoints) {
    net::HttpRequest req;
    req.host_header = resolved->host_header;
    req.tls_name = resolved->tls_name;
    req.connect_to = e;
    req.path = "/_matrix/federation/v1/version";
    req.max_response_bytes = 64 * 1024;
    absl::StatusOr<net::HttpResponse> r = (*http)->SendAndWait(req, deadline);
    if (std::optional<Verdict> v = recorder.last_verdict()) {
      CertificateCheck out;
      out.verdict = *std::move(v);
      out.checked_name = resolved->tls_name;
      out.endpoint = e.ToString();
      return out;
    }
    failures.push_back(std::string(r.status().message()));
    if (absl::IsDeadlineExceeded(r.status())) break;
  }
  return absl::UnavailableError(absl::StrCat("no TLS handshake with ", server_name, ": ",
                                             absl::StrJoin(failures, "; ")));
}

}  // namespace keyverifier::tls
