// HttpListener on loopback, driven by a real HTTP client (libcurl): plain and
// HTTPS, answers given later from another thread, and its limits.
#include "service/notary/http_listener.h"

#include <curl/curl.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::notary {
namespace {

struct Got {
  long status = 0;
  std::string body;
  CURLcode code = CURLE_OK;
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Got Fetch(const std::string& url, const std::string* post = nullptr, const std::string& ca = "",
          const std::string& header = "") {
  Got got;
  CURL* curl = curl_easy_init();
  curl_slist* headers = header.empty() ? nullptr : curl_slist_append(nullptr, header.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &got.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (post != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(post->size()));
  }
  if (!ca.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  got.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &got.status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  return got;
}

std::string Base(const HttpListener& l, const char* scheme = "http", const char* host = "127.0.0.1") {
  return absl::StrCat(scheme, "://", host, ":", l.port());
}

// Echoes what it was given: method, path, query, client, body.
void Echo(HttpRequest r, Respond respond) {
  std::move(respond)(HttpResponse{200, absl::StrCat(r.method, " ", r.path, " ", r.query, " ",
                                                    r.client, " ", r.body)});
}

class HttpListenerTest : public ::testing::Test {
 protected:
  static HttpListener::Options Plain() {
    HttpListener::Options o;
    o.listen = "127.0.0.1:0";
    return o;
  }
  testing::FakeClock clock_{absl::FromUnixSeconds(1700000000)};
};

TEST_F(HttpListenerTest, HandsRequestsToTheHandlerAndSendsItsAnswer) {
  auto l = HttpListener::Start(Plain(), Echo, clock_);
  ASSERT_TRUE(l.ok()) << l.status();
  ASSERT_GT((*l)->port(), 0);
  Got g = Fetch(Base(**l) + "/_matrix/key/v2/query/a%3A1?minimum_valid_until_ts=5");
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.body, "GET /_matrix/key/v2/query/a%3A1 minimum_valid_until_ts=5 127.0.0.1 ");
  const std::string body = R"({"server_keys":{}})";
  g = Fetch(Base(**l) + "/_matrix/key/v2/query", &body);
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.body, "POST /_matrix/key/v2/query  127.0.0.1 " + body);
}

TEST_F(HttpListenerTest, AnswersMayComeLaterFromAnotherThread) {
  absl::Mutex mu;
  std::vector<Respond> waiting;
  auto l = HttpListener::Start(
      Plain(),
      [&](HttpRequest, Respond respond) {
        absl::MutexLock lock(&mu);
        waiting.push_back(std::move(respond));
      },
      clock_);
  ASSERT_TRUE(l.ok());
  std::thread answerer([&] {
    for (;;) {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](std::vector<Respond>* w) { return !w->empty(); }, &waiting));
      std::move(waiting.back())(HttpResponse{202, "later"});
      waiting.pop_back();
      return;
    }
  });
  Got g = Fetch(Base(**l) + "/x");
  answerer.join();
  EXPECT_EQ(g.status, 202);
  EXPECT_EQ(g.body, "later");
}

TEST_F(HttpListenerTest, EachClientAddressHasItsOwnRateLimit) {
  HttpListener::Options o = Plain();
  o.requests_per_second = 1;
  o.burst = 3;
  auto l = HttpListener::Start(o, Echo, clock_);
  ASSERT_TRUE(l.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Fetch(Base(**l) + "/x").status, 200);
  Got limited = Fetch(Base(**l) + "/x");
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.body.find("M_LIMIT_EXCEEDED"), std::string::npos);
  clock_.Advance(absl::Seconds(1));  // one token back
  EXPECT_EQ(Fetch(Base(**l) + "/x").status, 200);
  EXPECT_EQ(Fetch(Base(**l) + "/x").status, 429);
}

TEST_F(HttpListenerTest, BehindATrustedProxyTheForwardedClientIsLimited) {
  HttpListener::Options o = Plain();
  o.requests_per_second = 1;
  o.burst = 2;
  o.trusted_proxies = {"127.0.0.0/8"};
  auto l = HttpListener::Start(o, Echo, clock_);
  ASSERT_TRUE(l.ok()) << l.status();
  auto from = [&](const std::string& forwarded) {
    return Fetch(Base(**l) + "/x", nullptr, "", "X-Forwarded-For: " + forwarded);
  };
  // The client is the last address listed (the one the proxy saw).
  Got g = from("203.0.113.9, 198.51.100.7");
  EXPECT_EQ(g.status, 200);
  EXPECT_NE(g.body.find(" 198.51.100.7 "), std::string::npos) << g.body;
  EXPECT_EQ(from("198.51.100.7").status, 200);
  EXPECT_EQ(from("198.51.100.7").status, 429);  // that client's burst is spent
  EXPECT_EQ(from("198.51.100.8").status, 200);  // another client's is not
  // Garbage in the header: the proxy's own address counts.
  g = from("not an address");
  EXPECT_NE(g.body.find(" 127.0.0.1 "), std::string::npos) << g.body;
}

TEST_F(HttpListenerTest, AForwardedForHeaderFromAnUntrustedPeerIsIgnored) {
  HttpListener::Options o = Plain();
  o.trusted_proxies = {"10.0.0.0/8"};
  auto l = HttpListener::Start(o, Echo, clock_);
  ASSERT_TRUE(l.ok());
  const std::string body =
      Fetch(Base(**l) + "/x", nullptr, "", "X-Forwarded-For: 198.51.100.7").body;
  EXPECT_NE(body.find(" 127.0.0.1 "), std::string::npos) << body;
  o.trusted_proxies = {"not-a-network"};
  EXPECT_TRUE(absl::StrContains(HttpListener::Start(o, Echo, clock_).status().message(),
                                "trusted proxy \"not-a-network\""));
}

TEST_F(HttpListenerTest, BodiesOverTheLimitAreRefused) {
  HttpListener::Options o = Plain();
  o.max_body_bytes = 1024;
  std::atomic<int> handled{0};
  auto l = HttpListener::Start(
      o, [&](HttpRequest r, Respond respond) { ++handled; Echo(std::move(r), std::move(respond)); },
      clock_);
  ASSERT_TRUE(l.ok());
  const std::string big(4096, 'x');
  Got g = Fetch(Base(**l) + "/_matrix/key/v2/query", &big);
  EXPECT_EQ(g.status, 413);
  EXPECT_EQ(handled.load(), 0);
  const std::string small(512, 'x');
  EXPECT_EQ(Fetch(Base(**l) + "/_matrix/key/v2/query", &small).status, 200);
}

TEST_F(HttpListenerTest, RequestsAwaitingAnAnswerAreBoundedAndAnsweredAtStop) {
  HttpListener::Options o = Plain();
  o.max_pending = 1;
  std::atomic<int> handled{0};
  std::vector<Respond> kept;  // never answered by the handler
  absl::Mutex mu;
  auto l = HttpListener::Start(
      o,
      [&](HttpRequest, Respond respond) {
        absl::MutexLock lock(&mu);
        ++handled;
        kept.push_back(std::move(respond));
      },
      clock_);
  ASSERT_TRUE(l.ok());
  Got first;
  std::thread t([&] { first = Fetch(Base(**l) + "/slow"); });
  while (handled.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Got second = Fetch(Base(**l) + "/x");
  EXPECT_EQ(second.status, 503);
  (*l)->Stop();
  t.join();
  EXPECT_EQ(first.status, 503);
  EXPECT_NE(first.body.find("shutting down"), std::string::npos);
  // Answering after Stop is harmless.
  absl::MutexLock lock(&mu);
  std::move(kept[0])(HttpResponse{200, "too late"});
}

TEST_F(HttpListenerTest, ServesHttpsWithTheConfiguredCertificate) {
  tls::testing::Hierarchy pki = tls::testing::MakeHierarchy("notary.test");
  const std::string dir = ::testing::TempDir();
  const std::string cert = dir + "/notary-cert.pem", key = dir + "/notary-key.pem",
                    ca = dir + "/notary-ca.pem";
  std::ofstream(cert) << pki.leaf.Pem() << pki.intermediate.Pem();
  std::ofstream(key) << tls::testing::KeyPem(pki.leaf);
  std::ofstream(ca) << pki.root.Pem();
  HttpListener::Options o = Plain();
  o.cert_file = cert;
  o.key_file = key;
  auto l = HttpListener::Start(o, Echo, clock_);
  ASSERT_TRUE(l.ok()) << l.status();
  CURL* curl = curl_easy_init();
  std::string body;
  const std::string url = absl::StrCat("https://notary.test:", (*l)->port(), "/tls");
  curl_slist* resolve =
      curl_slist_append(nullptr, absl::StrCat("notary.test:", (*l)->port(), ":127.0.0.1").c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  curl_slist_free_all(resolve);
  EXPECT_EQ(code, CURLE_OK) << curl_easy_strerror(code);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body.rfind("GET /tls", 0), 0u) << body;
  // Plain HTTP to the HTTPS port gets no answer.
  EXPECT_NE(Fetch(Base(**l) + "/tls").status, 200);
}

// The leaf certificate (PEM) a TLS client is shown at `port`, and the body
// of a GET; the chain must verify against `ca` for notary.test.
struct Served {
  CURLcode code = CURLE_OK;
  std::string leaf;
  std::string body;
};
Served ServedTo(int port, const std::string& ca) {
  Served served;
  CURL* curl = curl_easy_init();
  const std::string url = absl::StrCat("https://notary.test:", port, "/tls");
  curl_slist* resolve =
      curl_slist_append(nullptr, absl::StrCat("notary.test:", port, ":127.0.0.1").c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(curl, CURLOPT_CERTINFO, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &served.body);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
  served.code = curl_easy_perform(curl);
  curl_certinfo* info = nullptr;
  if (served.code == CURLE_OK && curl_easy_getinfo(curl, CURLINFO_CERTINFO, &info) == CURLE_OK &&
      info != nullptr && info->num_of_certs > 0) {
    for (curl_slist* f = info->certinfo[0]; f != nullptr; f = f->next) {
      if (absl::StartsWith(f->data, "Cert:")) served.leaf = f->data + 5;
    }
  }
  curl_easy_cleanup(curl);
  curl_slist_free_all(resolve);
  return served;
}

// Writes `text` to `path` as Kubernetes updates a Secret's files: a new file
// renamed over the old, so a reader sees the old or the new, never a part.
void Replace(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << text;
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

// A renewed certificate is served to new connections without a restart; a
// renewal that does not check out (a key of another certificate) is refused,
// named, and the good one in use stays.
TEST_F(HttpListenerTest, RenewedCertificateFilesAreServedAndBadOnesRefused) {
  tls::testing::Hierarchy first = tls::testing::MakeHierarchy("notary.test");
  tls::testing::Hierarchy renewed = tls::testing::MakeHierarchy("notary.test");
  tls::testing::Hierarchy other = tls::testing::MakeHierarchy("other.test");
  const std::string dir = ::testing::TempDir();
  const std::string cert = dir + "/reload-cert.pem", key = dir + "/reload-key.pem",
                    ca = dir + "/reload-ca.pem";
  Replace(cert, first.leaf.Pem() + first.intermediate.Pem());
  Replace(key, tls::testing::KeyPem(first.leaf));
  Replace(ca, first.root.Pem() + renewed.root.Pem());

  absl::Mutex mu;
  std::vector<std::string> seen;  // "outcome subject" or "refused error"
  HttpListener::Options o = Plain();
  o.cert_file = cert;
  o.key_file = key;
  o.reload_interval = absl::Milliseconds(50);
  o.on_certificate = [&](tls::ServingCertificateWatcher::Outcome outcome,
                         const tls::ServingCertificateWatcher& w) {
    absl::MutexLock lock(&mu);
    seen.push_back(absl::StrCat(tls::OutcomeName(outcome), " ",
                                outcome == tls::ServingCertificateWatcher::Outcome::kRefused
                                    ? w.error().message()
                                    : w.current().fingerprint));
  };
  auto l = HttpListener::Start(o, Echo, clock_);
  ASSERT_TRUE(l.ok()) << l.status();
  auto seen_count = [&] {
    absl::MutexLock lock(&mu);
    return seen.size();
  };
  // Waits until the latest report starts with `prefix`.
  auto await_report = [&](const std::string& prefix) {
    absl::MutexLock lock(&mu);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return !seen.empty() && absl::StartsWith(seen.back(), prefix);
    };
    return mu.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(20));
  };
  EXPECT_EQ(seen_count(), 1u);  // the one loaded at Start

  Served before = ServedTo((*l)->port(), ca);
  ASSERT_EQ(before.code, CURLE_OK) << curl_easy_strerror(before.code);
  EXPECT_TRUE(absl::StrContains(first.leaf.Pem(), absl::StripAsciiWhitespace(before.leaf)))
      << before.leaf;

  // Key first, then the chain: between the two the pair does not match and
  // a reload in that moment is refused, not served.
  Replace(key, tls::testing::KeyPem(renewed.leaf));
  Replace(cert, renewed.leaf.Pem() + renewed.intermediate.Pem());
  const std::string renewed_fp = tls::Sha256FingerprintHex(renewed.leaf.cert.get());
  ASSERT_TRUE(await_report("changed " + renewed_fp));
  Served after = ServedTo((*l)->port(), ca);
  ASSERT_EQ(after.code, CURLE_OK) << curl_easy_strerror(after.code);
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(seen.front(), "changed " + tls::Sha256FingerprintHex(first.leaf.cert.get()))
        << absl::StrJoin(seen, "\n");
  }
  EXPECT_TRUE(absl::StrContains(renewed.leaf.Pem(), absl::StripAsciiWhitespace(after.leaf)))
      << after.leaf;
  EXPECT_EQ(after.body.rfind("GET /tls", 0), 0u) << after.body;

  // A key that belongs to another certificate is refused, naming the key
  // file; the renewed certificate is still what clients get.
  Replace(key, tls::testing::KeyPem(other.leaf));
  ASSERT_TRUE(await_report("refused "));
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(absl::StrContains(
        seen.back(), absl::StrCat(key, ": the private key does not belong to the first certificate of ", cert)))
        << seen.back();
  }
  Served kept = ServedTo((*l)->port(), ca);
  ASSERT_EQ(kept.code, CURLE_OK) << curl_easy_strerror(kept.code);
  EXPECT_TRUE(absl::StrContains(renewed.leaf.Pem(), absl::StripAsciiWhitespace(kept.leaf)));
}

TEST_F(HttpListenerTest, BadConfigurationIsNamed) {
  HttpListener::Options o = Plain();
  o.listen = "nowhere";
  EXPECT_TRUE(absl::StrContains(HttpListener::Start(o, Echo, clock_).status().message(),
                                "\"nowhere\" is not HOST:PORT"));
  o = Plain();
  o.cert_file = "/nonexistent/cert.pem";
  o.key_file = "/nonexistent/key.pem";
  EXPECT_TRUE(absl::StrContains(HttpListener::Start(o, Echo, clock_).status().message(),
                                "cannot open /nonexistent/cert.pem"));
  o = Plain();
  o.cert_file = "x.pem";
  EXPECT_EQ(HttpListener::Start(o, Echo, clock_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keyverifier::notary
