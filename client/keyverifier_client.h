// KeyVerifierClient: a typed C++ client for the keyverifier service.
//
// Every call has a deadline (Options::timeout unless given). All RPCs of the
// API only read, so retrying is safe; the client retries only where a retry
// can help — UNAVAILABLE (no connection, server draining) and
// RESOURCE_EXHAUSTED (queue full) — with exponential backoff, up to
// Options::max_attempts. Other errors (INVALID_ARGUMENT, NOT_FOUND,
// DEADLINE_EXCEEDED, ...) are returned at once as absl::Status with the
// server's message.
//
// Thread-safe: one client may be shared by many threads.
#ifndef KEYVERIFIER_CLIENT_KEYVERIFIER_CLIENT_H_
#define KEYVERIFIER_CLIENT_KEYVERIFIER_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keyverifier/v1/service.grpc.pb.h"

namespace keyverifier::client {

struct ClientOptions {
  std::string target = "127.0.0.1:8470";
  absl::Duration timeout = absl::Seconds(10);
  int max_attempts = 3;
  // TLS: off when ca_file is empty. cert/key for mutual TLS.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // The name the server certificate must carry, if not the target's host.
  std::string server_name_override;
};

class KeyVerifierClient {
 public:
  // Errors: InvalidArgumentError for unreadable TLS files.
  static absl::StatusOr<std::unique_ptr<KeyVerifierClient>> Create(
      const ClientOptions& options);

  absl::StatusOr<v1::VerifyServerKeysResponse> VerifyServerKeys(
      const v1::VerifyServerKeysRequest& request);
  absl::StatusOr<v1::EventVerdict> VerifyEventSignature(
      const v1::VerifyEventSignatureRequest& request);
  absl::StatusOr<v1::VerifyEventsResponse> VerifyEvents(
      const v1::VerifyEventsRequest& request);
  absl::StatusOr<v1::VerifyRequestAuthResponse> VerifyRequestAuth(
      const v1::VerifyRequestAuthRequest& request);
  absl::StatusOr<v1::CheckCertificateResponse> CheckCertificate(
      const v1::CheckCertificateRequest& request);
  absl::StatusOr<v1::DiagnoseServerResponse> DiagnoseServer(
      const v1::DiagnoseServerRequest& request);
  // True when the service reports SERVING.
  absl::StatusOr<bool> Serving();

 private:
  KeyVerifierClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options);

  template <typename Req, typename Resp, typename Call>
  absl::StatusOr<Resp> Invoke(const Req& request, Call call);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KeyVerifier::Stub> stub_;
  ClientOptions options_;
};

}  // namespace keyverifier::client

#endif  // KEYVERIFIER_CLIENT_KEYVERIFIER_CLIENT_H_
