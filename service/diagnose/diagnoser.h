// Diagnoser: DiagnoseServer's I/O. Observes one server the way its peers see
// it and hands the observations to Analyze (findings.h) for the findings:
//
//  - discovery step by step: /.well-known/matrix/server (status, body,
//    cache lifetime), SRV for _matrix-fed._tcp and _matrix._tcp on the
//    host the spec says (with every target's CNAME records and addresses),
//    and the endpoints, Host header and TLS name ServerDiscovery gives;
//  - every endpoint at once: a handshake-only request (TLS version and
//    cipher, the certificate policy's verdict on the chain presented) and
//    GET /_matrix/key/v2/server at that address (the keys it serves,
//    checked by the core's parser);
//  - the key store's history of the server (read-only);
//  - each configured notary's answer for the server;
//  - GET /_matrix/federation/v1/version through the federation client.
//
// Everything outbound goes through the service's one path (discovery,
// HttpClient with the address filter and the certificate policy,
// FederationClient, the notary fetchers). Asynchronous: Diagnose returns
// at once (after the store read, which is local) and `done` runs once, on
// the thread that completed the last step; no thread waits on the network.
// Every step ends by the deadline, so a dead server gives a report saying
// so, not an error.
//
// Thread-safe; everything given in Deps is borrowed and must outlive every
// diagnosis in flight. Errors: InvalidArgumentError for a malformed server
// name, CancelledError when the fetch engines stopped.
#ifndef KEYVERIFIER_SERVICE_DIAGNOSE_DIAGNOSER_H_
#define KEYVERIFIER_SERVICE_DIAGNOSE_DIAGNOSER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "keyverifier/v1/service.pb.h"
#include "service/async/callback.h"
#include "service/clock/clock.h"
#include "service/clock/token_bucket.h"
#include "service/core/server_keys.h"
#include "service/diagnose/findings.h"
#include "service/fetch/key_fetcher.h"
#include "service/net/discovery.h"
#include "service/net/federation_client.h"
#include "service/net/http_client.h"
#include "service/net/resolver.h"
#include "service/net/well_known.h"
#include "service/store/key_store.h"
#include "service/tls/certificate_checker.h"

namespace keyverifier::diagnose {

class Diagnoser {
 public:
  struct Deps {
    net::ServerDiscovery* discovery = nullptr;
    net::WellKnownFetcher* well_known = nullptr;
    net::Resolver* resolver = nullptr;
    net::HttpClient* http = nullptr;
    net::FederationClient* federation = nullptr;
    const tls::CertificateChecker* checker = nullptr;
    // The configured notaries (may be empty).
    std::vector<fetch::KeyFetcher*> notaries;
    // Read for the key history; null: no history.
    store::KeyStore* store = nullptr;
    const Clock* clock = nullptr;
  };
  struct Options {
    // One diagnosis at most this long, whatever the caller's deadline.
    absl::Duration budget = absl::Seconds(20);
    // Endpoints probed at most.
    int max_addresses = 16;
    size_t max_keys = core::kDefaultMaxKeysPerResponse;
    net::CachePolicy well_known_cache;
    AnalysisOptions analysis;  // now_ms is set per report
    // Reports started per second, with this burst: each one probes a
    // server's every address, so a caller cannot make the service probe
    // servers without bound. Beyond it: ResourceExhaustedError.
    double reports_per_second = 2;
    double burst = 30;
  };
  Diagnoser(Deps deps, Options options)
      : deps_(std::move(deps)),
        options_(std::move(options)),
        reports_(options_.reports_per_second, options_.burst) {}

  void Diagnose(const std::string& server_name, absl::Time deadline,
                async::Callback<v1::DiagnoseServerResponse> done) const;
  absl::StatusOr<v1::DiagnoseServerResponse> DiagnoseAndWait(const std::string& server_name,
                                                             absl::Time deadline) const {
    return async::Wait<v1::DiagnoseServerResponse>(
        [&](auto cb) { Diagnose(server_name, deadline, std::move(cb)); });
  }

 private:
  struct Job;
  void WellKnown(std::shared_ptr<Job> job, const std::string& host) const;
  void Srv(std::shared_ptr<Job> job, const std::string& host) const;
  void Discover(std::shared_ptr<Job> job) const;
  void Probe(std::shared_ptr<Job> job, int index, const net::ResolvedServer& resolved) const;
  void Notaries(std::shared_ptr<Job> job) const;
  void Version(std::shared_ptr<Job> job) const;
  void History(Job& job) const;
  // One step of `job` is over; the last one finishes the report.
  void Release(std::shared_ptr<Job> job) const;

  const Deps deps_;
  const Options options_;
  mutable absl::Mutex mu_;
  mutable TokenBucket reports_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::diagnose

#endif  // KEYVERIFIER_SERVICE_DIAGNOSE_DIAGNOSER_H_
