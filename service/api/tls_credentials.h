// TlsServerCredentials: TLS (optionally mutual) on the gRPC port, through
// gRPC's certificate-config fetcher: each new handshake asks for the current
// certificate, so a renewal is served to new connections without a restart
// (connections already open keep theirs). Only certificates that checked out
// (a ServingCertificateWatcher's current one) are ever handed to gRPC, so a
// bad renewal on disk cannot take the port down.
//
// Thread-safe: Update may be called from any thread while gRPC handshakes.
// gRPC calls back into this object on every handshake, so it must outlive the
// grpc::Server it is added to (hold the shared_ptr beyond the server).
#ifndef KEYVERIFIER_SERVICE_API_TLS_CREDENTIALS_H_
#define KEYVERIFIER_SERVICE_API_TLS_CREDENTIALS_H_

#include <grpc/grpc_security.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "service/tls/serving_certificate.h"

namespace keyverifier::api {

class TlsServerCredentials final : public grpc::ServerCredentials {
 public:
  // With `cert.ca_pem` set, clients must present a certificate that chains
  // to it (mutual TLS); otherwise none is asked for.
  static std::shared_ptr<TlsServerCredentials> Create(const tls::ServingCertificate& cert);
  ~TlsServerCredentials() override;

  // New handshakes present `cert` from now on.
  void Update(const tls::ServingCertificate& cert);

  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {}

 private:
  explicit TlsServerCredentials(const tls::ServingCertificate& cert);
  int AddPortToServer(const std::string& addr, grpc_server* server) override;
  static grpc_ssl_certificate_config_reload_status Fetch(
      void* self, grpc_ssl_server_certificate_config** config);

  absl::Mutex mu_;
  tls::ServingCertificate current_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t handed_out_ ABSL_GUARDED_BY(mu_) = 0;  // the generation gRPC has
  grpc_server_credentials* c_credentials_ = nullptr;
};

}  // namespace keyverifier::api

#endif  // KEYVERIFIER_SERVICE_API_TLS_CREDENTIALS_H_
