// The policy on live TLS connections: an in-process OpenSSL server on
// 127.0.0.1 (port 0) presents a generated chain; the client's SSL_CTX is
// configured by ApplyPolicy/PrepareConnection.
#include "service/tls/ssl_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::tls {
namespace {

using ::keyverifier::tls::testing::CertSpec;
using ::keyverifier::tls::testing::DefaultValidationTime;
using ::keyverifier::tls::testing::Hierarchy;
using ::keyverifier::tls::testing::MakeCert;
using ::keyverifier::tls::testing::MakeHierarchy;
using ::testing::ElementsAre;

// Accepts one connection, completes the handshake if it can, records the
// SNI it was sent, and closes.
class OneShotServer {
 public:
  OneShotServer(const Hierarchy& pki, int max_version) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(ctx_.get(), pki.leaf.cert.get());
    SSL_CTX_use_PrivateKey(ctx_.get(), pki.leaf.key.get());
    SSL_CTX_add1_chain_cert(ctx_.get(), pki.intermediate.cert.get());
    SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 1);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~OneShotServer() {
    Join();
    close(fd_);
  }

  int port() const { return port_; }
  // Waits for the connection to finish; sni() is valid afterwards.
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& sni() const { return sni_; }
  bool sni_sent() const { return sni_sent_; }

 private:
  void Serve() {
    int conn = accept(fd_, nullptr, nullptr);
    if (conn < 0) return;
    SslPtr ssl(SSL_new(ctx_.get()));
    SSL_set_fd(ssl.get(), conn);
    if (SSL_accept(ssl.get()) == 1) {
      SSL_write(ssl.get(), "x", 1);
      SSL_shutdown(ssl.get());
    }
    const char* name = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name);
    sni_sent_ = name != nullptr;
    if (name) sni_ = name;
    close(conn);
    ERR_clear_error();
  }

  SslCtxPtr ctx_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string sni_;
  bool sni_sent_ = false;
};

struct ClientResult {
  bool handshake_ok = false;
  ConnectionCheck check;
};

ClientResult Connect(const CertificatePolicy& policy, int port, const std::string& name) {
  ClientResult r;
  r.check.peer = *PeerName::Parse(name);
  r.check.at = DefaultValidationTime();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  EXPECT_TRUE(ApplyPolicy(policy, ctx.get()).ok());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  EXPECT_TRUE(PrepareConnection(ssl.get(), &r.check).ok());
  r.handshake_ok = SSL_connect(ssl.get()) == 1;
  if (r.handshake_ok) {
    char c;
    SSL_read(ssl.get(), &c, 1);
  }
  ssl.reset();
  close(fd);
  ERR_clear_error();
  return r;
}

std::unique_ptr<CertificatePolicy> Trusting(const Hierarchy& pki, int min_version) {
  CertificatePolicyOptions options;
  std::vector<X509Ptr> roots;
  roots.push_back(pki.root.Ref());
  options.trust_store = *TrustStore::FromCertificates(std::move(roots));
  options.min_tls_version = min_version;
  return *CertificatePolicy::Create(std::move(options));
}

TEST(SslPolicyTest, HandshakeSucceedsForTheRightNameWithSni) {
  Hierarchy pki = MakeHierarchy("matrix.example.org");
  auto policy = Trusting(pki, TLS1_2_VERSION);
  OneShotServer server(pki, TLS1_3_VERSION);
  ClientResult r = Connect(*policy, server.port(), "matrix.example.org");
  server.Join();
  EXPECT_TRUE(r.handshake_ok);
  EXPECT_TRUE(r.check.checked);
  EXPECT_TRUE(r.check.verdict.valid);
  EXPECT_EQ(r.check.verdict.verified_chain.size(), 3u);
  EXPECT_EQ(server.sni(), "matrix.example.org");
}

TEST(SslPolicyTest, HandshakeAbortsOnWrongName) {
  Hierarchy pki = MakeHierarchy("matrix.example.org");
  auto policy = Trusting(pki, TLS1_2_VERSION);
  OneShotServer server(pki, TLS1_3_VERSION);
  ClientResult r = Connect(*policy, server.port(), "other.example.org");
  server.Join();
  EXPECT_FALSE(r.handshake_ok);
  EXPECT_TRUE(r.check.checked);
  EXPECT_FALSE(r.check.verdict.valid);
  ASSERT_EQ(r.check.verdict.reasons.size(), 1u);
  EXPECT_EQ(r.check.verdict.reasons[0].reason, Reason::kHostnameMismatch);
}

TEST(SslPolicyTest, IpLiteralSendsNoSni) {
  Hierarchy pki;
  pki.root = testing::MakeRoot("Root");
  pki.intermediate = testing::MakeIntermediate("Intermediate", pki.root);
  CertSpec spec;
  spec.ip_addresses = {"127.0.0.1"};
  pki.leaf = MakeCert(spec, &pki.intermediate);
  auto policy = Trusting(pki, TLS1_2_VERSION);
  OneShotServer server(pki, TLS1_3_VERSION);
  ClientResult r = Connect(*policy, server.port(), "127.0.0.1");
  server.Join();
  EXPECT_TRUE(r.handshake_ok);
  EXPECT_TRUE(r.check.verdict.valid);
  EXPECT_FALSE(server.sni_sent());
}

TEST(SslPolicyTest, MinimumVersionIsEnforced) {
  Hierarchy pki = MakeHierarchy("matrix.example.org");
  OneShotServer tls12(pki, TLS1_2_VERSION);
  ClientResult ok =
      Connect(*Trusting(pki, TLS1_2_VERSION), tls12.port(), "matrix.example.org");
  tls12.Join();
  EXPECT_TRUE(ok.handshake_ok);

  OneShotServer tls12_again(pki, TLS1_2_VERSION);
  ClientResult refused =
      Connect(*Trusting(pki, TLS1_3_VERSION), tls12_again.port(), "matrix.example.org");
  tls12_again.Join();
  EXPECT_FALSE(refused.handshake_ok);
  EXPECT_FALSE(refused.check.checked);  // refused before any certificate
}

}  // namespace
}  // namespace keyverifier::tls
