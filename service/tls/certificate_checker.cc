#include "service/tls/certificate_checker.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/server_name.h"

namespace keyverifier::tls {

absl::StatusOr<CertificateCheck> CertificateChecker::Judge(
    const std::vector<std::string>& chain, const std::vector<std::string>& delivered_scts,
    const std::string& name, absl::Time at) const {
  absl::StatusOr<PeerName> peer = PeerName::Parse(name);
  if (!peer.ok()) return peer.status();
  CertificateCheck out;
  out.checked_name = name;
  absl::StatusOr<std::vector<X509Ptr>> certs = ParseChain(chain, "chain");
  if (!certs.ok()) {  // not certificates: a verdict of its own
    AddFinding(&out.verdict.reasons, Reason::kMalformed, std::string(certs.status().message()));
    return out;
  }
  CheckContext context;
  context.delivered_scts = delivered_scts;
  if (fingerprints_) context.fingerprint_source = [&] { return fingerprints_(name); };
  out.verdict = policy_.Check(*certs, *peer, at == absl::InfinitePast() ? clock_.Now() : at,
                              context);
  return out;
}

absl::StatusOr<CertificateCheck> CertificateChecker::CheckOffered(
    const core::ServerName& server_name, const std::vector<std::string>& chain,
    absl::Time at) const {
  return Judge(chain, {}, std::string(server_name.host()), at);
}

void CertificateChecker::CheckLive(const core::ServerName& server_name, uint16_t port,
                                   absl::Time at, absl::Time deadline,
                                   async::Callback<CertificateCheck> done) const {
  if (client_ == nullptr) {
    return done(
        absl::FailedPreconditionError("live certificate checks need outbound fetching enabled"));
  }
  const core::ServerName name = port != 0 ? server_name.WithPort(port) : server_name;
  // Only the handshake: what the server presents is judged here, whatever
  // the policy would have let the connection go on with.
  net::HttpRequest request;
  request.path = "/_matrix/federation/v1/version";
  request.handshake_only = true;
  client_->Send(name, std::move(request), deadline,
                [this, name, at, done = std::move(done)](
                    absl::StatusOr<net::HttpResponse> r) mutable {
                  if (!r.ok()) {
                    return done(absl::Status(r.status().code(),
                                             absl::StrCat("no TLS handshake with ", name.view(),
                                                          ": ", r.status().message())));
                  }
                  absl::StatusOr<CertificateCheck> out =
                      Judge(r->peer_chain_der, r->peer_scts, r->tls_name, at);
                  if (out.ok()) out->endpoint = r->endpoint;
                  done(std::move(out));
                });
}

}  // namespace keyverifier::tls
