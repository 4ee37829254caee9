#include "service/tls/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::tls {

X509Ptr Ref(X509* cert) {
  X509_up_ref(cert);
  return X509Ptr(cert);
}

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(absl::string_view data,
                                                       absl::string_view what) {
  std::vector<X509Ptr> certs;
  ERR_clear_error();
  if (absl::StrContains(data, "-----BEGIN")) {
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    while (true) {
      char* name = nullptr;
      char* header = nullptr;
      unsigned char* body = nullptr;
      long len = 0;
      if (PEM_read_bio(bio.get(), &name, &header, &body, &len) != 1) {
        ERR_clear_error();  // end of input
        break;
      }
      std::string block_name = name;
      OPENSSL_free(name);
      OPENSSL_free(header);
      const unsigned char* p = body;
      if (block_name == "CERTIFICATE" || block_name == "X509 CERTIFICATE") {
        X509* cert = d2i_X509(nullptr, &p, len);
        bool trailing = cert != nullptr && p != body + len;
        OPENSSL_free(body);
        if (cert == nullptr || trailing) {
          X509_free(cert);
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": certificate ", certs.size() + 1, " is not valid DER",
              trailing ? " (trailing bytes)" : "", ": ", DrainOpenSslErrors()));
        }
        certs.emplace_back(cert);
      } else {
        OPENSSL_free(body);
      }
    }
  } else if (!data.empty()) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(data.size()));
    if (cert == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": neither PEM nor a DER certificate"));
    }
    certs.emplace_back(cert);
    if (p != reinterpret_cast<const unsigned char*>(data.data()) + data.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": trailing bytes after the DER certificate"));
    }
  }
  if (certs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": no certificate found"));
  }
  return certs;
}

std::string ToDer(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::vector<X509Ptr>> ParseChain(const std::vector<std::string>& parts,
                                                absl::string_view what) {
  std::vector<X509Ptr> chain;
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::StatusOr<std::vector<X509Ptr>> certs =
        ParseCertificates(parts[i], absl::StrCat(what, "[", i, "]"));
    if (!certs.ok()) return certs.status();
    for (X509Ptr& c : *certs) chain.push_back(std::move(c));
  }
  return chain;
}

std::string Sha256FingerprintHex(X509* cert) {
  std::string der = ToDer(cert);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(der.data()), der.size(), md);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), sizeof(md)));
}

std::string NameToString(const X509_NAME* name) {
  if (name == nullptr) return "";
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::Time Asn1ToTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  absl::CivilSecond cs(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                       tm.tm_min, tm.tm_sec);
  return absl::FromCivil(cs, absl::UTCTimeZone());
}

}  // namespace keyverifier::tls
