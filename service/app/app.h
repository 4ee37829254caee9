// App: every component the service runs on, built once from the
// configuration, in dependency order: key store, outbound address filter,
// certificate policy, DNS, HTTPS, server discovery, key fetchers and the
// policy over them, the keyrings (pinned keys in front of the fetching one),
// the refresher, the certificate checker and the Verifier the gRPC layer
// serves. main.cc only starts servers around it; tests build it the same way.
//
// Create takes the settings in force (config::Effective of the file; every
// component option is set from them, so no default is decided here) and
// validates what the config file's schema cannot (networks, key ids, keys,
// files, times, names), naming the offending key ("config:
// fetch.notaries[0].verify_keys[ed25519:x]: ..."). The clock, observer and
// logger are borrowed.
#ifndef KEYVERIFIER_SERVICE_APP_APP_H_
#define KEYVERIFIER_SERVICE_APP_APP_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/api/verifier.h"
#include "service/clock/clock.h"
#include "service/config/config.h"
#include "service/diagnose/diagnoser.h"
#include "service/fetch/direct_fetcher.h"
#include "service/fetch/key_sources.h"
#include "service/fetch/notary_fetcher.h"
#include "service/io/file.h"
#include "service/keyring/fetching_keyring.h"
#include "service/keyring/refresher.h"
#include "service/keyring/banned_keys.h"
#include "service/keyring/trusted_keys.h"
#include "service/async/worker_pool.h"
#include "service/net/cares_resolver.h"
#include "service/net/federation_client.h"
#include "service/net/fetch_engine.h"
#include "service/net/discovery.h"
#include "service/net/http_client.h"
#include "service/net/ip_filter.h"
#include "service/net/well_known_fetcher.h"
#include "service/notary/notary.h"
#include "service/observe/log.h"
#include "service/observe/observer.h"
#include "service/store/key_store.h"
#include "service/tls/certificate_checker.h"
#include "service/tls/certificate_policy.h"
#include "service/tls/policy_peer_verifier.h"

namespace keyverifier::app {

using ReadFile = io::ReadFile;

class App {
 public:
  static absl::StatusOr<std::unique_ptr<App>> Create(const config::Settings& settings,
                                                     const ReadFile& read_file,
                                                     const Clock& clock,
                                                     observe::Observer& observer,
                                                     observe::Logger& log,
                                                     async::Executor* cpu = nullptr);
  ~App();

  api::Verifier& verifier() { return *verifier_; }
  keyring::KeyRing& keyring() { return *keyring_; }
  // Answers other servers' key queries; null unless notary_listen is set.
  notary::Notary* notary() { return notary_.get(); }
  // DiagnoseServer's logic (reports on single servers, on the interactive
  // lane).
  diagnose::Diagnoser& diagnoser() { return *diagnoser_; }
  // Starts the refresher (if enabled); Stop joins it.
  void Start();
  // Cancels every fetch in flight (their callers are answered); first step
  // of shutting down, before the gRPC service waits for its calls.
  void StopFetching();
  void Stop();

  // What was built, for the start-up log line.
  std::string Describe() const;

 private:
  App() = default;

  config::StoreKind store_kind_ = v1::Config::sqlite;
  std::unique_ptr<store::KeyStore> store_;
  std::unique_ptr<async::WorkerPool> key_pool_;
  std::unique_ptr<net::IpFilter> filter_;
  std::unique_ptr<tls::CertificatePolicy> policy_;
  std::unique_ptr<tls::PolicyPeerVerifier> peer_verifier_;
  // Outbound work of one priority: a fetch engine (its own loop thread)
  // with the resolver, HTTP client and .well-known fetcher running on it.
  struct Lane {
    std::unique_ptr<net::FetchEngine> engine;
    std::unique_ptr<net::CaresResolver> resolver;
    std::unique_ptr<net::CurlHttpClient> http;
    std::unique_ptr<net::HttpsWellKnownFetcher> well_known;
    net::ServerDiscovery::Lane Discovery() const { return {resolver.get(), well_known.get()}; }
  };
  static absl::StatusOr<std::unique_ptr<Lane>> MakeLane(
      const net::FetchEngine::Options& engine, const net::CaresResolver::Options& dns,
      const net::CurlHttpClient::Options& http,
      const net::HttpsWellKnownFetcher::Options& well_known, const net::PeerVerifier& verifier,
      const net::IpFilter& filter);
  std::unique_ptr<Lane> bulk_;         // batches and the refresher
  std::unique_ptr<Lane> interactive_;  // single callers' lookups
  std::unique_ptr<net::ServerDiscovery> discovery_;
  std::unique_ptr<net::FederationClient> federation_;
  std::unique_ptr<fetch::DirectFetcher> direct_;
  std::vector<std::unique_ptr<fetch::NotaryFetcher>> notaries_;
  std::unique_ptr<fetch::KeySources> sources_;
  std::unique_ptr<keyring::TrustedKeyRing> trusted_;
  std::unique_ptr<keyring::FetchingKeyRing> fetching_;
  std::unique_ptr<keyring::FallbackKeyRing> fallback_;
  std::unique_ptr<keyring::BannedKeys> banned_;
  std::unique_ptr<keyring::BanningKeyRing> keyring_;  // what the service asks
  std::unique_ptr<keyring::Refresher> refresher_;
  std::unique_ptr<tls::CertificateChecker> checker_;
  std::unique_ptr<api::Verifier> verifier_;
  // Acting as a notary: its own keyring over the same store, fetching from
  // origins only (a notary never forwards a query to its notaries).
  std::unique_ptr<fetch::KeySources> notary_sources_;
  std::unique_ptr<keyring::FetchingKeyRing> notary_keyring_;
  std::unique_ptr<notary::Notary> notary_;
  std::unique_ptr<diagnose::Diagnoser> diagnoser_;
};

}  // namespace keyverifier::app

#endif  // KEYVERIFIER_SERVICE_APP_APP_H_
