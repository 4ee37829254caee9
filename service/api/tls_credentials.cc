#include "service/api/tls_credentials.h"

#include <grpc/grpc.h>

namespace keyverifier::api {

std::shared_ptr<TlsServerCredentials> TlsServerCredentials::Create(
    const tls::ServingCertificate& cert) {
  return std::shared_ptr<TlsServerCredentials>(new TlsServerCredentials(cert));
}

TlsServerCredentials::TlsServerCredentials(const tls::ServingCertificate& cert)
    : current_(cert) {
  grpc_ssl_server_credentials_options* options =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          cert.ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY,
          &TlsServerCredentials::Fetch, this);
  // Takes ownership of the options.
  c_credentials_ = grpc_ssl_server_credentials_create_with_options(options);
}

TlsServerCredentials::~TlsServerCredentials() {
  if (c_credentials_ != nullptr) grpc_server_credentials_release(c_credentials_);
}

void TlsServerCredentials::Update(const tls::ServingCertificate& cert) {
  absl::MutexLock lock(&mu_);
  current_ = cert;
  ++generation_;
}

int TlsServerCredentials::AddPortToServer(const std::string& addr, grpc_server* server) {
  return grpc_server_add_http2_port(server, addr.c_str(), c_credentials_);
}

grpc_ssl_certificate_config_reload_status TlsServerCredentials::Fetch(
    void* arg, grpc_ssl_server_certificate_config** config) {
  auto* self = static_cast<TlsServerCredentials*>(arg);
  absl::MutexLock lock(&self->mu_);
  if (self->handed_out_ == self->generation_) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  const tls::ServingCertificate& c = self->current_;
  grpc_ssl_pem_key_cert_pair pair{c.key_pem.c_str(), c.chain_pem.c_str()};
  // gRPC insists on a root bundle in a fetched config even when no client
  // certificate is asked for; then the server's own chain stands in, unused
  // (no certificate request is sent, so nothing is checked against it).
  const std::string& roots = c.ca_pem.empty() ? c.chain_pem : c.ca_pem;
  // Copies the strings; the caller owns the config.
  *config = grpc_ssl_server_certificate_config_create(roots.c_str(), &pair, 1);
  if (*config == nullptr) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
  self->handed_out_ = self->generation_;
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

}  // namespace keyverifier::api
