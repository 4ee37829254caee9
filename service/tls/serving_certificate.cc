#include "service/tls/serving_certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::tls {
namespace {

absl::StatusOr<EvpPkeyPtr> ParsePrivateKey(const std::string& pem, const std::string& what) {
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": no PEM private key (", DrainOpenSslErrors(), ")"));
  }
  return key;
}

// The files' contents, unchecked: what a reload compares before parsing.
absl::StatusOr<ServingCertificate> ReadFiles(const ServingFiles& files, const io::ReadFile& read) {
  ServingCertificate out;
  absl::StatusOr<std::string> chain = read(files.cert_file);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key = read(files.key_file);
  if (!key.ok()) return key.status();
  if (!files.ca_file.empty()) {
    absl::StatusOr<std::string> ca = read(files.ca_file);
    if (!ca.ok()) return ca.status();
    out.ca_pem = *std::move(ca);
  }
  out.chain_pem = *std::move(chain);
  out.key_pem = *std::move(key);
  return out;
}

// Checks what ReadFiles read and describes the leaf.
absl::Status CheckContents(const ServingFiles& files, ServingCertificate& cert) {
  absl::StatusOr<std::vector<X509Ptr>> certs = ParseCertificates(cert.chain_pem, files.cert_file);
  if (!certs.ok()) return certs.status();
  if (!absl::StrContains(cert.chain_pem, "-----BEGIN")) {
    return absl::InvalidArgumentError(absl::StrCat(files.cert_file, ": not PEM"));
  }
  absl::StatusOr<EvpPkeyPtr> pkey = ParsePrivateKey(cert.key_pem, files.key_file);
  if (!pkey.ok()) return pkey.status();
  X509* leaf = (*certs)[0].get();
  ERR_clear_error();
  if (X509_check_private_key(leaf, pkey->get()) != 1) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(absl::StrCat(
        files.key_file, ": the private key does not belong to the first certificate of ",
        files.cert_file));
  }
  if (!files.ca_file.empty()) {
    absl::StatusOr<std::vector<X509Ptr>> roots = ParseCertificates(cert.ca_pem, files.ca_file);
    if (!roots.ok()) return roots.status();
  }
  cert.subject = NameToString(X509_get_subject_name(leaf));
  cert.fingerprint = Sha256FingerprintHex(leaf);
  cert.not_after = Asn1ToTime(X509_get0_notAfter(leaf));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServingCertificate> LoadServingCertificate(const ServingFiles& files,
                                                          const io::ReadFile& read) {
  absl::StatusOr<ServingCertificate> cert = ReadFiles(files, read);
  if (!cert.ok()) return cert.status();
  if (absl::Status s = CheckContents(files, *cert); !s.ok()) return s;
  return cert;
}

absl::StatusOr<SslCtxPtr> NewServerContext(const ServingCertificate& cert) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) return absl::InternalError("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  absl::StatusOr<std::vector<X509Ptr>> certs = ParseCertificates(cert.chain_pem, "chain");
  if (!certs.ok()) return certs.status();
  absl::StatusOr<EvpPkeyPtr> key = ParsePrivateKey(cert.key_pem, "key");
  if (!key.ok()) return key.status();
  if (SSL_CTX_use_certificate(ctx.get(), (*certs)[0].get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certificate is not usable: ", DrainOpenSslErrors()));
  }
  for (size_t i = 1; i < certs->size(); ++i) {
    // add1: the context takes its own reference.
    if (SSL_CTX_add1_chain_cert(ctx.get(), (*certs)[i].get()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("chain certificate ", i + 1, " is not usable: ", DrainOpenSslErrors()));
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key->get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the private key is not usable: ", DrainOpenSslErrors()));
  }
  return ctx;
}

absl::StatusOr<ServingCertificateWatcher> ServingCertificateWatcher::Create(ServingFiles files,
                                                                          io::ReadFile read) {
  absl::StatusOr<ServingCertificate> first = LoadServingCertificate(files, read);
  if (!first.ok()) return first.status();
  return ServingCertificateWatcher(std::move(files), std::move(read), *std::move(first));
}

ServingCertificateWatcher::Outcome ServingCertificateWatcher::Check() {
  // Unchanged files are not parsed again.
  absl::StatusOr<ServingCertificate> now = ReadFiles(files_, read_);
  error_ = now.status();
  if (now.ok() && now->SameFilesAs(current_)) return Outcome::kUnchanged;
  if (now.ok()) error_ = CheckContents(files_, *now);
  // The files may be half rewritten; the next check sees them whole.
  if (!error_.ok()) return Outcome::kRefused;
  current_ = *std::move(now);
  return Outcome::kChanged;
}

absl::string_view OutcomeName(ServingCertificateWatcher::Outcome outcome) {
  switch (outcome) {
    case ServingCertificateWatcher::Outcome::kUnchanged:
      return "unchanged";
    case ServingCertificateWatcher::Outcome::kChanged:
      return "changed";
    case ServingCertificateWatcher::Outcome::kRefused:
      return "refused";
  }
  return "unknown";
}

}  // namespace keyverifier::tls
