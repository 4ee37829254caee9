// ServingCertificate: what one of the service's own listeners presents (the
// gRPC port, the notary port): a certificate chain and its private key, and
// optionally the CA bundle clients' certificates must chain to, read from PEM
// files and checked together. Certificates are renewed while the service
// runs (cert-manager rewrites a Secret's files in place), so the files are
// read again on a timer; a set that does not check out is refused and the
// one in use stays (ServingCertificateWatcher).
//
// Pure apart from the injected file reader. Thread-compatible.
#ifndef KEYVERIFIER_SERVICE_TLS_SERVING_CERTIFICATE_H_
#define KEYVERIFIER_SERVICE_TLS_SERVING_CERTIFICATE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/io/file.h"
#include "service/tls/openssl_util.h"

namespace keyverifier::tls {

struct ServingFiles {
  std::string cert_file;  // PEM chain, leaf first
  std::string key_file;   // PEM private key of the leaf
  std::string ca_file;    // optional: PEM CA bundle for client certificates
};

struct ServingCertificate {
  std::string chain_pem;
  std::string key_pem;
  std::string ca_pem;  // empty without ca_file
  // Of the leaf, for logs and the expiry metric.
  std::string subject;
  std::string fingerprint;  // SHA-256, hex
  absl::Time not_after;

  // The same files' contents (what a reload compares).
  bool SameFilesAs(const ServingCertificate& o) const {
    return chain_pem == o.chain_pem && key_pem == o.key_pem && ca_pem == o.ca_pem;
  }
};


// Reads and checks the files: every certificate in the chain parses, the key
// parses and belongs to the leaf, the CA bundle (if any) parses. Errors name
// the file and what is wrong with it (InvalidArgumentError; NotFoundError
// from the reader as it came).
absl::StatusOr<ServingCertificate> LoadServingCertificate(const ServingFiles& files,
                                                          const io::ReadFile& read);

// An SSL_CTX for a TLS server presenting `cert` (TLS 1.2 at least).
absl::StatusOr<SslCtxPtr> NewServerContext(const ServingCertificate& cert);

// Keeps the last good ServingCertificate of a set of files. Check() reads the
// files again: kUnchanged when they are as before, kChanged when a new set
// checks out (it becomes current), kRefused when the new contents do not
// check out (current stays; error() says why).
class ServingCertificateWatcher {
 public:
  enum class Outcome { kUnchanged, kChanged, kRefused };

  // Loads the files once; an error is the start-up error.
  static absl::StatusOr<ServingCertificateWatcher> Create(ServingFiles files,
                                                          io::ReadFile read);

  Outcome Check();
  const ServingCertificate& current() const { return current_; }
  const ServingFiles& files() const { return files_; }
  // Why the last Check() refused the files; OK otherwise.
  const absl::Status& error() const { return error_; }

 private:
  ServingCertificateWatcher(ServingFiles files, io::ReadFile read, ServingCertificate first)
      : files_(std::move(files)), read_(std::move(read)), current_(std::move(first)) {}

  ServingFiles files_;
  io::ReadFile read_;
  ServingCertificate current_;
  absl::Status error_;
};

absl::string_view OutcomeName(ServingCertificateWatcher::Outcome outcome);

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_SERVING_CERTIFICATE_H_
