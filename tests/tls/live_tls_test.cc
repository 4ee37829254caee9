// The certificate policy on live connections, as every federation request
// makes them: CurlHttpClient (on a FetchEngine) with the PolicyPeerVerifier,
// against an
// in-process OpenSSL HTTPS server on 127.0.0.1 presenting generated chains.
// Covers each kind of rejection, the whitelist (globs and CIDRs), the
// fingerprint fallback before and after its deadline, the custom-CA modes,
// the minimum TLS version and SNI.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "service/net/discovery.h"
#include "service/net/federation_client.h"
#include "service/net/fetch_engine.h"
#include "service/net/http_client.h"
#include "service/tls/certificate_checker.h"
#include "service/tls/policy_peer_verifier.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_net.h"
#include "tests/tls/test_pki.h"
#include "tests/testing/server_name.h"

namespace keyverifier::tls {
namespace {

using ::keyverifier::testing::Name;

using testing::CertSpec;
using testing::DefaultValidationTime;
using testing::Hierarchy;
using testing::MakeCert;
using testing::MakeHierarchy;
using testing::TestCert;

// Serves HTTPS on 127.0.0.1 until destroyed: presents `chain` (leaf first),
// answers every request with 200 "{}", records the SNI of each connection.
class TlsServer {
 public:
  // `sct_list`: a SignedCertificateTimestampList to send in the TLS
  // extension (TLS 1.2), empty for none.
  TlsServer(const std::vector<const TestCert*>& chain, int max_version = TLS1_3_VERSION,
            const std::string& sct_list = "") {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    // Serve what an old server might (SHA-1, small RSA): judging it is the
    // client's job.
    SSL_CTX_set_security_level(ctx_.get(), 0);
    SSL_CTX_use_certificate(ctx_.get(), chain[0]->cert.get());
    SSL_CTX_use_PrivateKey(ctx_.get(), chain[0]->key.get());
    for (size_t i = 1; i < chain.size(); ++i) {
      SSL_CTX_add1_chain_cert(ctx_.get(), chain[i]->cert.get());
    }
    SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
    if (!sct_list.empty()) {
      // serverinfo v1: extension type 18 (signed_certificate_timestamp), length, data.
      std::string info;
      info.push_back(0);
      info.push_back(18);
      info.push_back(static_cast<char>(sct_list.size() >> 8));
      info.push_back(static_cast<char>(sct_list.size() & 0xff));
      info += sct_list;
      EXPECT_EQ(SSL_CTX_use_serverinfo(ctx_.get(),
                                       reinterpret_cast<const unsigned char*>(info.data()),
                                       info.size()),
                1);
    }
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 8);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TlsServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  uint16_t port() const { return static_cast<uint16_t>(port_); }
  std::vector<std::string> snis() {
    absl::MutexLock lock(&mu_);
    return snis_;
  }
  // The names of the first `n` handshakes, once the server has seen them:
  // a client that ends a handshake early may be done before the server
  // notices.
  std::vector<std::string> snis(size_t n) {
    absl::MutexLock lock(&mu_);
    auto seen = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return snis_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&seen), absl::Seconds(10));
    return snis_;
  }
  int requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int conn = accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      SslPtr ssl(SSL_new(ctx_.get()));
      SSL_set_fd(ssl.get(), conn);
      bool ok = SSL_accept(ssl.get()) == 1;
      const char* name = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name);
      {
        absl::MutexLock lock(&mu_);
        snis_.push_back(name ? name : "(none)");
      }
      if (ok) {
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
          int n = SSL_read(ssl.get(), buf, sizeof buf);
          if (n <= 0) break;
          request.append(buf, n);
        }
        if (!request.empty()) {
          absl::MutexLock lock(&mu_);
          ++requests_;
        }
        static const char kReply[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        SSL_write(ssl.get(), kReply, sizeof kReply - 1);
        SSL_shutdown(ssl.get());
      }
      close(conn);
      ERR_clear_error();
    }
  }

  SslCtxPtr ctx_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> snis_ ABSL_GUARDED_BY(mu_);
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
};

class CountingObserver : public observe::Observer {
 public:
  void OnCertificateFallback(absl::string_view) override { ++fallbacks; }
  std::atomic<int> fallbacks{0};
};

class LiveTlsTest : public ::testing::Test {
 protected:
  LiveTlsTest() : pki_(MakeHierarchy("matrix.example.org")), clock_(DefaultValidationTime()) {
    absl::StatusOr<std::unique_ptr<net::FetchEngine>> engine = net::FetchEngine::Create({});
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (engine.ok()) engine_ = *std::move(engine);
  }

  std::unique_ptr<CertificatePolicy> Policy(CertificatePolicyOptions o = {}) {
    if (o.trust_store == nullptr && o.trust.mode == TrustStoreOptions::Mode::kSystem &&
        o.trust.ca_files.empty() && !use_system_) {
      std::vector<X509Ptr> roots;
      roots.push_back(pki_.root.Ref());
      o.trust_store = *TrustStore::FromCertificates(std::move(roots));
    }
    absl::StatusOr<std::unique_ptr<CertificatePolicy>> p = CertificatePolicy::Create(std::move(o));
    EXPECT_TRUE(p.ok()) << p.status();
    return *std::move(p);
  }
  // One GET through the production client, as the key fetcher makes it.
  absl::Status Get(const CertificatePolicy& policy, const TlsServer& server,
                   const std::string& name, FingerprintSource fps = nullptr) {
    PolicyPeerVerifier verifier(policy, clock_, std::move(fps), observer_);
    net::IpFilter allow = net::IpFilter::AllowAll();
    if (engine_ == nullptr) return absl::InternalError("no fetch engine");
    auto http = *net::CurlHttpClient::Create(*engine_, verifier, allow, {});
    net::HttpRequest req;
    req.host_header = name.find(':') != std::string::npos ? "[" + name + "]" : name;
    req.path = "/_matrix/key/v2/server";
    req.connect_to = {*net::ParseIpAddress("127.0.0.1"), server.port()};
    req.tls_name = name;
    absl::StatusOr<net::HttpResponse> r = http->SendAndWait(req, absl::Now() + absl::Seconds(10));
    if (r.ok() && r->status != 200) return absl::InternalError("unexpected HTTP status");
    return r.status();
  }
  std::string PemFile(const std::string& pem) {
    std::string path = std::string(getenv("TEST_TMPDIR")) + "/ca-" + std::to_string(files_++) + ".pem";
    FILE* f = fopen(path.c_str(), "w");
    fputs(pem.c_str(), f);
    fclose(f);
    return path;
  }
  // Refused by the policy, naming `reason` (or `alternative`: an unknown
  // root behind a presented intermediate reads as a missing issuer).
  static void ExpectRefused(const absl::Status& s, absl::string_view reason,
                            absl::string_view alternative = "\x01") {
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "certificate rejected")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), reason) ||
                absl::StrContains(s.message(), alternative))
        << "want " << reason << ": " << s;
  }

  // Runs the transfers; outlives every client (they are made per request).
  std::unique_ptr<net::FetchEngine> engine_;
  Hierarchy pki_;
  keyverifier::testing::FakeClock clock_;
  CountingObserver observer_;
  bool use_system_ = false;
  int files_ = 0;
};

TEST_F(LiveTlsTest, TrustedChainForTheNameSendsSniAndTheRequest) {
  TlsServer server({&pki_.leaf, &pki_.intermediate});
  auto policy = Policy();
  EXPECT_TRUE(Get(*policy, server, "matrix.example.org").ok());
  EXPECT_EQ(server.snis(), std::vector<std::string>{"matrix.example.org"});
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(LiveTlsTest, EachKindOfBadCertificateIsRefusedWithItsReason) {
  auto policy = Policy();
  {
    TlsServer server({&pki_.leaf, &pki_.intermediate});
    ExpectRefused(Get(*policy, server, "other.example.org"), "hostname_mismatch");
    EXPECT_EQ(server.requests(), 0);  // aborted in the handshake
  }
  {
    TlsServer server({&pki_.leaf});  // intermediate not sent
    ExpectRefused(Get(*policy, server, "matrix.example.org"), "missing_intermediate");
  }
  struct Case {
    const char* what;
    CertSpec spec;
    const char* reason;
  };
  CertSpec expired;
  expired.dns_names = {"matrix.example.org"};
  expired.not_before = DefaultValidationTime() - absl::Hours(48);
  expired.not_after = DefaultValidationTime() - absl::Hours(24);
  CertSpec future = expired;
  future.not_before = DefaultValidationTime() + absl::Hours(24);
  future.not_after = DefaultValidationTime() + absl::Hours(48);
  CertSpec client_only;
  client_only.dns_names = {"matrix.example.org"};
  client_only.eku = {"clientAuth"};
  CertSpec cn_only;
  cn_only.common_name = "matrix.example.org";
  CertSpec sha1;
  sha1.dns_names = {"matrix.example.org"};
  sha1.key_type = testing::KeyType::kRsa;
  sha1.digest = "SHA1";
  CertSpec small_rsa;
  small_rsa.dns_names = {"matrix.example.org"};
  small_rsa.key_type = testing::KeyType::kRsa;
  small_rsa.rsa_bits = 1024;
  for (const Case& c : {Case{"expired", expired, "expired"},
                        Case{"not yet valid", future, "not_yet_valid"},
                        Case{"clientAuth only", client_only, "bad_eku"},
                        Case{"CN only", cn_only, "hostname_mismatch"},
                        Case{"SHA-1", sha1, "weak_signature_algorithm"},
                        Case{"1024-bit RSA", small_rsa, "weak_key"}}) {
    SCOPED_TRACE(c.what);
    TestCert leaf = MakeCert(c.spec, &pki_.intermediate);
    TlsServer server({&leaf, &pki_.intermediate});
    ExpectRefused(Get(*policy, server, "matrix.example.org"), c.reason);
  }
  CertSpec self_spec;
  self_spec.dns_names = {"matrix.example.org"};
  TestCert self = MakeCert(self_spec, nullptr);
  TlsServer server({&self});
  ExpectRefused(Get(*policy, server, "matrix.example.org"), "untrusted_root");
}

TEST_F(LiveTlsTest, IpLiteralMatchesIpSansAndSendsNoSni) {
  CertSpec spec;
  spec.ip_addresses = {"127.0.0.1"};
  TestCert leaf = MakeCert(spec, &pki_.intermediate);
  TlsServer server({&leaf, &pki_.intermediate});
  auto policy = Policy();
  EXPECT_TRUE(Get(*policy, server, "127.0.0.1").ok());
  EXPECT_EQ(server.snis(), std::vector<std::string>{"(none)"});
  ExpectRefused(Get(*policy, server, "127.0.0.2"), "hostname_mismatch");
}

TEST_F(LiveTlsTest, WhitelistGlobsAndNetworksSkipTheChecks) {
  CertSpec self_spec;
  self_spec.dns_names = {"unrelated.example"};
  TestCert self = MakeCert(self_spec, nullptr);
  TlsServer server({&self});
  CertificatePolicyOptions o;
  o.whitelist = {"*.onion", "127.0.0.0/8"};
  auto policy = Policy(std::move(o));
  EXPECT_TRUE(Get(*policy, server, "hidden.onion").ok());
  EXPECT_TRUE(Get(*policy, server, "127.0.0.1").ok());
  ExpectRefused(Get(*policy, server, "matrix.example.org"), "untrusted_root");
}

TEST_F(LiveTlsTest, FingerprintFallbackBeforeAndAfterItsDeadline) {
  CertSpec self_spec;
  self_spec.dns_names = {"matrix.example.org"};
  TestCert self = MakeCert(self_spec, nullptr);
  TlsServer server({&self});
  const std::string fp = absl::HexStringToBytes(Sha256FingerprintHex(self.cert.get()));
  FingerprintSource published = [fp](absl::string_view) {
    return absl::flat_hash_set<std::string>{fp};
  };
  CertificatePolicyOptions o;
  o.fingerprint_fallback = true;
  o.fingerprint_fallback_until = DefaultValidationTime() + absl::Hours(24);
  auto policy = Policy(std::move(o));
  EXPECT_TRUE(Get(*policy, server, "matrix.example.org", published).ok());
  EXPECT_EQ(observer_.fallbacks.load(), 1);
  ExpectRefused(Get(*policy, server, "matrix.example.org"), "untrusted_root");  // none published
  clock_.Advance(absl::Hours(25));
  ExpectRefused(Get(*policy, server, "matrix.example.org", published), "untrusted_root");
  EXPECT_EQ(observer_.fallbacks.load(), 1);
}

TEST_F(LiveTlsTest, AdminCaFilesReplaceOrAddToTheSystemStore) {
  TlsServer server({&pki_.leaf, &pki_.intermediate});
  const std::string ca = PemFile(pki_.root.Pem());
  use_system_ = true;
  // The system store alone does not know the test root.
  ExpectRefused(Get(*Policy(), server, "matrix.example.org"), "untrusted_root",
                "missing_intermediate");
  CertificatePolicyOptions replace;
  replace.trust.mode = TrustStoreOptions::Mode::kReplace;
  replace.trust.ca_files = {ca};
  EXPECT_TRUE(Get(*Policy(std::move(replace)), server, "matrix.example.org").ok());
  CertificatePolicyOptions add;
  add.trust.mode = TrustStoreOptions::Mode::kAdd;
  add.trust.ca_files = {ca};
  EXPECT_TRUE(Get(*Policy(std::move(add)), server, "matrix.example.org").ok());
  // Replacing with another CA: the test root is no longer trusted.
  Hierarchy other = MakeHierarchy("elsewhere.example");
  CertificatePolicyOptions other_ca;
  other_ca.trust.mode = TrustStoreOptions::Mode::kReplace;
  other_ca.trust.ca_files = {PemFile(other.root.Pem())};
  ExpectRefused(Get(*Policy(std::move(other_ca)), server, "matrix.example.org"),
                "untrusted_root", "missing_intermediate");
}

TEST_F(LiveTlsTest, CertificateTransparencyFromTheTlsExtension) {
  testing::CtLog log_a = testing::MakeCtLog("log_a");
  testing::CtLog log_b = testing::MakeCtLog("log_b");
  testing::CtLog unknown = testing::MakeCtLog("unknown");
  const std::string list = PemFile(testing::CtLogList({&log_a, &log_b}));
  auto enforcing = [&] {
    CertificatePolicyOptions o;
    o.ct_mode = CtMode::kEnforce;
    o.ct_log_list_file = list;
    o.ct_min_logs = 2;
    return Policy(std::move(o));
  };
  const absl::Time sct_time = DefaultValidationTime() - absl::Hours(1);
  {
    TlsServer two({&pki_.leaf, &pki_.intermediate}, TLS1_2_VERSION,
                  testing::TlsExtensionSctList(pki_.leaf, {&log_a, &log_b}, sct_time));
    EXPECT_TRUE(Get(*enforcing(), two, "matrix.example.org").ok());
  }
  {
    TlsServer one({&pki_.leaf, &pki_.intermediate}, TLS1_2_VERSION,
                  testing::TlsExtensionSctList(pki_.leaf, {&log_a, &unknown}, sct_time));
    ExpectRefused(Get(*enforcing(), one, "matrix.example.org"), "ct_policy_unmet");
  }
  {
    TlsServer none({&pki_.leaf, &pki_.intermediate}, TLS1_2_VERSION);
    ExpectRefused(Get(*enforcing(), none, "matrix.example.org"), "ct_policy_unmet");
  }
}

TEST_F(LiveTlsTest, MinimumTlsVersion) {
  TlsServer tls12({&pki_.leaf, &pki_.intermediate}, TLS1_2_VERSION);
  EXPECT_TRUE(Get(*Policy(), tls12, "matrix.example.org").ok());
  CertificatePolicyOptions o;
  o.min_tls_version = TLS1_3_VERSION;
  absl::Status s = Get(*Policy(std::move(o)), tls12, "matrix.example.org");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;  // no handshake at all
  EXPECT_EQ(tls12.requests(), 1);
}

// CheckLive: the federation client's discovery, then only a handshake on
// the fetch engine (no request is sent), its chain judged by the policy
// even when the policy refuses it; without a client there is no live mode.
TEST_F(LiveTlsTest, CertificateCheckerLiveModeUsesTheFederationClient) {
  TlsServer server({&pki_.leaf, &pki_.intermediate});
  auto policy = Policy();
  keyverifier::testing::FakeResolver resolver;
  resolver.AddHost("matrix.example.org", {"127.0.0.1"});
  resolver.AddHost("other.example.org", {"127.0.0.1"});
  keyverifier::testing::FakeWellKnownFetcher well_known;
  net::IpFilter allow = net::IpFilter::AllowAll();
  net::ServerDiscovery discovery(resolver, well_known, allow, clock_, {});
  PolicyPeerVerifier enforcing(*policy, clock_);
  absl::StatusOr<std::unique_ptr<net::CurlHttpClient>> http =
      net::CurlHttpClient::Create(*engine_, enforcing, allow, {});
  ASSERT_TRUE(http.ok()) << http.status();
  net::FederationClient client(discovery, **http);
  CertificateChecker checker(*policy, &client, clock_);
  const std::string endpoint = "127.0.0.1:" + std::to_string(server.port());

  absl::StatusOr<CertificateCheck> check = checker.CheckLiveAndWait(
      Name("matrix.example.org"), server.port(), absl::InfinitePast(),
      absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->verdict.valid);
  EXPECT_EQ(check->checked_name, "matrix.example.org");
  EXPECT_EQ(check->endpoint, endpoint);
  EXPECT_EQ(server.snis(1), std::vector<std::string>{"matrix.example.org"});

  check = checker.CheckLiveAndWait(Name("other.example.org"), server.port(), absl::InfinitePast(),
                            absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_FALSE(check->verdict.valid);
  EXPECT_TRUE(check->verdict.Has(Reason::kHostnameMismatch));
  EXPECT_EQ(check->checked_name, "other.example.org");
  EXPECT_EQ(check->endpoint, endpoint);
  EXPECT_EQ(server.requests(), 0);  // handshakes only

  CertificateChecker no_client(*policy, nullptr, clock_);
  EXPECT_EQ(no_client
                .CheckLiveAndWait(Name("matrix.example.org"), server.port(), absl::InfinitePast(),
                           absl::Now() + absl::Seconds(10))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace keyverifier::tls
