#include "service/tls/trust_store.h"

#include "service/io/file.h"

#include "absl/strings/str_cat.h"

namespace keyverifier::tls {
namespace {

absl::Status AddFile(const std::string& path, std::vector<X509Ptr>* out) {
  absl::StatusOr<std::string> data = io::ReadFileFromDisk(path);
  if (!data.ok()) return absl::NotFoundError(absl::StrCat("cannot read CA file ", path));
  absl::StatusOr<std::vector<X509Ptr>> certs =
      ParseCertificates(*data, absl::StrCat("CA file ", path));
  if (!certs.ok()) return certs.status();
  for (X509Ptr& c : *certs) out->push_back(std::move(c));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TrustStore>> TrustStore::Create(
    const TrustStoreOptions& options) {
  using Mode = TrustStoreOptions::Mode;
  if (options.mode == Mode::kSystem && !options.ca_files.empty()) {
    return absl::InvalidArgumentError(
        "CA files given with the system-only trust mode; use replace or add");
  }
  if (options.mode == Mode::kReplace && options.ca_files.empty()) {
    return absl::InvalidArgumentError("trust mode replace needs at least one CA file");
  }
  std::vector<X509Ptr> roots;
  if (options.mode != Mode::kReplace) {
    absl::Status s = AddFile(options.system_bundle, &roots);
    if (!s.ok()) return s;
  }
  for (const std::string& f : options.ca_files) {
    absl::Status s = AddFile(f, &roots);
    if (!s.ok()) return s;
  }
  return FromCertificates(std::move(roots));
}

absl::StatusOr<std::shared_ptr<const TrustStore>> TrustStore::FromCertificates(
    std::vector<X509Ptr> roots) {
  std::shared_ptr<TrustStore> t(new TrustStore());
  t->store_.reset(X509_STORE_new());
  if (!t->store_) return absl::InternalError("X509_STORE_new failed");
  for (X509Ptr& r : roots) {
    // Adding the same certificate twice is harmless; OpenSSL reports it as
    // an error only before 1.1.1.
    X509_STORE_add_cert(t->store_.get(), r.get());
    t->roots_.push_back(std::move(r));
  }
  DrainOpenSslErrors();
  return std::shared_ptr<const TrustStore>(std::move(t));
}

}  // namespace keyverifier::tls
