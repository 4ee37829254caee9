#include "client/keyverifier_client.h"

#include "service/io/file.h"
#include <grpc/support/time.h>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <thread>

#include "absl/strings/str_cat.h"

namespace keyverifier::client {
namespace {

// A TLS file that cannot be read is the caller's mistake.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  absl::StatusOr<std::string> text = io::ReadFileFromDisk(path);
  if (!text.ok()) return absl::InvalidArgumentError(text.status().message());
  return text;
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyVerifierClient>> KeyVerifierClient::Create(
    const ClientOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!options.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadFile(options.ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!options.cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(options.cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(options.key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    if (!options.server_name_override.empty()) {
      args.SetSslTargetNameOverride(options.server_name_override);
    }
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  return std::unique_ptr<KeyVerifierClient>(new KeyVerifierClient(
      grpc::CreateCustomChannel(options.target, creds, args), options));
}

KeyVerifierClient::KeyVerifierClient(std::shared_ptr<grpc::Channel> channel,
                                     ClientOptions options)
    : channel_(std::move(channel)),
      stub_(v1::KeyVerifier::NewStub(channel_)),
      options_(std::move(options)) {}

template <typename Req, typename Resp, typename Call>
absl::StatusOr<Resp> KeyVerifierClient::Invoke(const Req& request, Call call) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  absl::Duration backoff = absl::Milliseconds(50);
  grpc::Status status;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    Resp response;
    status = call(&context, request, &response);
    if (status.ok()) return response;
    if (!Retryable(status.error_code()) || absl::Now() + backoff >= deadline) break;
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff *= 2;
  }
  return FromGrpc(status);
}

absl::StatusOr<v1::VerifyServerKeysResponse> KeyVerifierClient::VerifyServerKeys(
    const v1::VerifyServerKeysRequest& request) {
  return Invoke<v1::VerifyServerKeysRequest, v1::VerifyServerKeysResponse>(
      request, [this](auto* c, const auto& req, auto* resp) {
        return stub_->VerifyServerKeys(c, req, resp);
      });
}

absl::StatusOr<v1::EventVerdict> KeyVerifierClient::VerifyEventSignature(
    const v1::VerifyEventSignatureRequest& request) {
  return Invoke<v1::VerifyEventSignatureRequest, v1::EventVerdict>(
      request, [this](auto* c, const auto& req, auto* resp) {
        return stub_->VerifyEventSignature(c, req, resp);
      });
}

absl::StatusOr<v1::VerifyEventsResponse> KeyVerifierClient::VerifyEvents(
    const v1::VerifyEventsRequest& request) {
  return Invoke<v1::VerifyEventsRequest, v1::VerifyEventsResponse>(
      request, [this](auto* c, const auto& req, auto* resp) {
        return stub_->VerifyEvents(c, req, resp);
      });
}

absl::StatusOr<v1::VerifyRequestAuthResponse> KeyVerifierClient::VerifyRequestAuth(
    const v1::VerifyRequestAuthRequest& request) {
  return Invoke<v1::VerifyRequestAuthRequest, v1::VerifyRequestAuthResponse>(
      request, [this](auto* c, const auto& req, auto* resp) {
        return stub_->VerifyRequestAuth(c, req, resp);
      });
}

absl::StatusOr<v1::CheckCertificateResponse> KeyVerifierClient::CheckCertificate(
    const v1::CheckCertificateRequest& request) {
  return Invoke<v1::CheckCertificateRequest, v1::CheckCertificateResponse>(
      request, [this](auto* c, const auto& req, auto* resp) {
        return stub_->CheckCertificate(c, req, resp);
      });
}

absl::StatusOr<v1::DiagnoseServerResponse> KeyVerifierClient::DiagnoseServer(
    const v1::DiagnoseServerRequest& request) {
  return Invoke<v1::DiagnoseServerRequest, v1::DiagnoseServerResponse>(
      request, [this](auto* c, const auto& req, auto* resp) {
        return stub_->DiagnoseServer(c, req, resp);
      });
}

absl::StatusOr<bool> KeyVerifierClient::Serving() {
  // grpc.health.v1.Health/Check with an empty request; the reply's field 1 is
  // the status (1 = SERVING). The generic stub avoids compiling health.proto.
  grpc::GenericStub generic(channel_);
  grpc::ClientContext context;
  // On the monotonic clock: a step of the wall clock does not end the call.
  context.set_deadline(gpr_time_add(
      gpr_now(GPR_CLOCK_MONOTONIC),
      gpr_time_from_micros(absl::ToInt64Microseconds(options_.timeout), GPR_TIMESPAN)));
  grpc::Slice empty_message;
  grpc::ByteBuffer request(&empty_message, 1);
  grpc::ByteBuffer reply;
  grpc::Status status;
  absl::Mutex mu;
  bool done = false;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                    &request, &reply, [&](grpc::Status s) {
                      absl::MutexLock lock(&mu);
                      status = std::move(s);
                      done = true;
                    });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&done));
  if (!status.ok()) return FromGrpc(status);
  std::vector<grpc::Slice> slices;
  if (!reply.Dump(&slices).ok()) return absl::InternalError("bad health reply");
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes.size() >= 2 && bytes[0] == 0x08 && bytes[1] == 0x01;
}

}  // namespace keyverifier::client
