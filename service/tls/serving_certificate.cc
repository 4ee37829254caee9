#include "service/tls/serving_certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>
#include <iterator>
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

}  // namespace

absl::StatusOr<std::string> ReadTextFileFromDisk(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

absl::StatusOr<ServingCertificate> LoadServingCertificate(const ServingFiles& files,
                                                          const ReadTextFile& read) {
  ServingCertificate out;
  absl::StatusOr<std::string> chain = read(files.cert_file);
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key = read(files.key_file);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::vector<X509Ptr>> certs = ParseCertificates(*chain, files.cert_file);
  if (!certs.ok()) return certs.status();
  if (!absl::StrContains(*chain, "-----BEGIN")) {
    return absl::InvalidArgumentError(absl::StrCat(files.cert_file, ": not PEM"));
  }
  absl::StatusOr<EvpPkeyPtr> pkey = ParsePrivateKey(*key, files.key_file);
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
    absl::StatusOr<std::string> ca = read(files.ca_file);
    if (!ca.ok()) return ca.status();
    absl::StatusOr<std::vector<X509Ptr>> roots = ParseCertificates(*ca, files.ca_file);
    if (!roots.ok()) return roots.status();
    out.ca_pem = *std::move(ca);
  }
  out.subject = NameToString(X509_get_subject_name(leaf));
  out.fingerprint = Sha256FingerprintHex(leaf);
  out.not_after = Asn1ToTime(X509_get0_notAfter(leaf));
  out.chain_pem = *std::move(chain);
  out.key_pem = *std::move(key);
  return out;
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
                                                                          ReadTextFile read) {
  absl::StatusOr<ServingCertificate> first = LoadServingCertificate(files, read);
  if (!first.ok()) return first.status();
  return ServingCertificateWatcher(std::move(files), std::move(read), *std::move(first));
}

ServingCertificateWatcher::Outcome ServingCertificateWatcher::Check() {
  absl::StatusOr<ServingCertificate> now = LoadServingCertificate(files_, read_);
  if (!now.ok()) {
    // The files may be half rewritten; the next check sees them whole.
    error_ = now.status();
    return Outcome::kRefused;
  }
  error_ = absl::OkStatus();
  if (now->SameFilesAs(current_)) return Outcome::kUnchanged;
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
