// The roots a certificate chain may end in: the operating system's bundle,
// the operator's CA files instead of it, or both.
//
// Thread-safety: immutable after Create; the X509_STORE it hands out is only
// read during verification and may be used from many threads at once.
// Errors (Create): NotFoundError for an unreadable file, InvalidArgumentError
// naming the file whose contents are not certificates, or an options mix
// that means nothing (replace mode without CA files).
#ifndef KEYVERIFIER_SERVICE_TLS_TRUST_STORE_H_
#define KEYVERIFIER_SERVICE_TLS_TRUST_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/tls/openssl_util.h"

namespace keyverifier::tls {

// Debian's bundle (package ca-certificates).
inline constexpr char kDebianCaBundle[] = "/etc/ssl/certs/ca-certificates.crt";

struct TrustStoreOptions {
  enum class Mode {
    kSystem,   // the OS bundle only (ca_files must be empty)
    kReplace,  // ca_files only
    kAdd,      // the OS bundle and ca_files
  };
  Mode mode = Mode::kSystem;
  std::string system_bundle = kDebianCaBundle;
  std::vector<std::string> ca_files;  // PEM (one or more) or DER
};

class TrustStore {
 public:
  static absl::StatusOr<std::shared_ptr<const TrustStore>> Create(
      const TrustStoreOptions& options);
  // Exactly these roots (tests, per-request stores).
  static absl::StatusOr<std::shared_ptr<const TrustStore>> FromCertificates(
      std::vector<X509Ptr> roots);

  TrustStore(const TrustStore&) = delete;
  TrustStore& operator=(const TrustStore&) = delete;

  const std::vector<X509Ptr>& roots() const { return roots_; }
  // Borrowed; valid as long as this TrustStore.
  X509_STORE* store() const { return store_.get(); }

 private:
  TrustStore() = default;
  std::vector<X509Ptr> roots_;
  X509StorePtr store_;
};

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_TRUST_STORE_H_
