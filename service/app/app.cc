#include "service/app/app.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/crypto.h"
#include "service/core/server_name.h"
#include "service/core/signing_key_file.h"
#include "service/core/verify_key.h"
#include "service/store/memory_key_store.h"
#include "service/store/postgres_key_store.h"
#include "service/store/sqlite_key_store.h"

namespace keyverifier::app {
namespace {

absl::Status Bad(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", key, ": ", why));
}

// For an enum value Effective() never gives (settings made in code).
std::string NotOneOf(int value, const google::protobuf::EnumDescriptor* type) {
  return absl::StrCat(value, " is not one of ", config::EnumNames(*type));
}

// Who holds a fetch lease: this process, unique among the replicas (host
// name, process id and a random part, so a restarted process is another).
std::string LeaseHolder() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  uint64_t nonce = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&nonce), sizeof(nonce));
  return absl::StrCat(host, ":", getpid(), ":", absl::Hex(nonce));
}

absl::StatusOr<std::unique_ptr<store::KeyStore>> MakeStore(const config::Settings& s) {
  switch (s.store.kind) {
    case v1::Config::sqlite: {
      store::SqliteOptions o;
      o.path = absl::StrCat(s.data_dir, "/", store::kSqliteFileName);
      return store::SqliteKeyStore::Create(o);
    }
    case v1::Config::postgres: {
      if (s.store.postgres.empty()) {
        return Bad("store.postgres", "a connection string is needed for kind postgres");
      }
      store::PostgresOptions o;
      o.conninfo = s.store.postgres;
      o.connections = s.store.connections;
      return store::PostgresKeyStore::Create(o);
    }
    case v1::Config::memory:
      return store::MemoryKeyStore::Create();
    default:
      return Bad("store.kind", NotOneOf(s.store.kind, v1::Config::StoreKind_descriptor()));
  }
}

absl::StatusOr<tls::CertificatePolicyOptions> PolicyOptions(
    const config::Settings::FederationTls& t) {
  tls::CertificatePolicyOptions o;
  // Which modes need CA files is the trust store's rule; its errors come
  // back through CertificatePolicy::Create, under "config: federation_tls".
  switch (t.ca_mode) {
    case v1::Config::system:
      o.trust.mode = tls::TrustStoreOptions::Mode::kSystem;
      break;
    case v1::Config::replace:
      o.trust.mode = tls::TrustStoreOptions::Mode::kReplace;
      break;
    case v1::Config::add:
      o.trust.mode = tls::TrustStoreOptions::Mode::kAdd;
      break;
    default:
      return Bad("federation_tls.ca_mode", NotOneOf(t.ca_mode, v1::Config::CaMode_descriptor()));
  }
  o.trust.ca_files = t.ca_files;
  o.whitelist = t.whitelist;
  switch (t.min_version) {
    case v1::Config::tls1_2:
      o.min_tls_version = TLS1_2_VERSION;
      break;
    case v1::Config::tls1_3:
      o.min_tls_version = TLS1_3_VERSION;
      break;
    default:
      return Bad("federation_tls.min_version",
                 NotOneOf(t.min_version, v1::Config::TlsVersion_descriptor()));
  }
  if (!t.fingerprint_fallback_until.empty()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, t.fingerprint_fallback_until,
                         &o.fingerprint_fallback_until, &err)) {
      return Bad("federation_tls.fingerprint_fallback_until",
                 absl::StrCat("\"", t.fingerprint_fallback_until, "\" is not an RFC 3339 time: ",
                              err));
    }
    o.fingerprint_fallback = true;
  }
  switch (t.ct_mode) {
    case v1::Config::off:
      o.ct_mode = tls::CtMode::kOff;
      break;
    case v1::Config::report:
      o.ct_mode = tls::CtMode::kReport;
      break;
    case v1::Config::enforce:
      o.ct_mode = tls::CtMode::kEnforce;
      break;
    default:
      return Bad("federation_tls.ct_mode", NotOneOf(t.ct_mode, v1::Config::CtMode_descriptor()));
  }
  o.ct_log_list_file = t.ct_log_list;
  o.ct_min_logs = t.ct_min_logs;
  return o;
}

absl::StatusOr<core::PinnedNotary> Notary(const config::Settings::Notary& n, int i) {
  const std::string key = absl::StrCat("fetch.notaries[", i, "]");
  absl::StatusOr<core::ServerName> name = core::ServerName::Parse(n.server_name);
  if (!name.ok()) return Bad(absl::StrCat(key, ".server_name"), name.status().message());
  if (n.verify_keys.empty()) {
    return Bad(absl::StrCat(key, ".verify_keys"), "a notary needs at least one pinned key");
  }
  core::PinnedNotary out{*std::move(name), {}};
  for (const auto& [id, b64] : n.verify_keys) {
    const std::string where = absl::StrCat(key, ".verify_keys[", id, "]");
    if (!core::IsValidEd25519KeyId(id)) return Bad(where, "not an ed25519 key id");
    absl::StatusOr<core::Ed25519PublicKey> pk = core::Ed25519PublicKeyFromBase64(b64, "the key");
    if (!pk.ok()) return Bad(where, pk.status().message());
    core::VerifyKey k;
    k.key_id = id;
    k.public_key = *pk;
    out.keys.push_back(k);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<App::Lane>> App::MakeLane(
    const net::FetchEngine::Options& engine, const net::CaresResolver::Options& dns,
    const net::CurlHttpClient::Options& http, const net::HttpsWellKnownFetcher::Options& well_known,
    const net::PeerVerifier& verifier, const net::IpFilter& filter) {
  auto lane = std::make_unique<Lane>();
  absl::StatusOr<std::unique_ptr<net::FetchEngine>> e = net::FetchEngine::Create(engine);
  if (!e.ok()) return Bad("fetch", e.status().message());
  lane->engine = *std::move(e);
  absl::StatusOr<std::unique_ptr<net::CaresResolver>> resolver =
      net::CaresResolver::Create(*lane->engine, dns);
  if (!resolver.ok()) return Bad("dns", resolver.status().message());
  lane->resolver = *std::move(resolver);
  absl::StatusOr<std::unique_ptr<net::CurlHttpClient>> client =
      net::CurlHttpClient::Create(*lane->engine, verifier, filter, http);
  if (!client.ok()) return Bad("fetch", client.status().message());
  lane->http = *std::move(client);
  lane->well_known =
      std::make_unique<net::HttpsWellKnownFetcher>(*lane->http, *lane->resolver, well_known);
  return lane;
}

absl::StatusOr<std::unique_ptr<App>> App::Create(const config::Settings& s,
                                                 const ReadFile& read_file, const Clock& clock,
                                                 observe::Observer& observer,
                                                 observe::Logger& log, async::Executor* cpu) {
  // What is wrong with the settings themselves, before anything is built
  // (or a database connected to).
  if (s.store.kind == v1::Config::postgres && s.store.lease <= s.fetch.budget) {
    return Bad("store.lease_ms", absl::StrCat(absl::ToInt64Milliseconds(s.store.lease),
                                              " is not more than fetch.budget_ms (",
                                              absl::ToInt64Milliseconds(s.fetch.budget),
                                              "): a lease would end before its fetch"));
  }
  std::unique_ptr<App> app(new App());

  // Outbound requests and lookups run on two event loops: one for single
  // callers' lookups, one for batches' (the refresher's too); the keyring's
  // store work on a small pool of its own. Batches take three quarters of
  // the connections (and of the DNS queries), so that a quarter
  // is always left for single lookups.
  const int max_connections = std::max(2, s.fetch.max_connections);
  const int bulk_connections = std::max(1, max_connections * 3 / 4);
  absl::StatusOr<std::unique_ptr<async::WorkerPool>> key_pool =
      async::WorkerPool::Create(2, 1 << 20, "kv-keys");
  if (!key_pool.ok()) return key_pool.status();
  app->key_pool_ = *std::move(key_pool);

  absl::StatusOr<std::unique_ptr<store::KeyStore>> store = MakeStore(s);
  if (!store.ok()) return store.status();
  app->store_ = *std::move(store);
  app->store_kind_ = s.store.kind;

  net::IpFilter::Options filter;
  filter.use_default_denylist = s.outbound.default_denylist;
  filter.denied = s.outbound.denied;
  filter.allowed = s.outbound.allowed;
  filter.nat64_prefixes = s.outbound.nat64_prefixes;
  absl::StatusOr<net::IpFilter> ip_filter = net::IpFilter::Create(filter);
  if (!ip_filter.ok()) return Bad("outbound", ip_filter.status().message());
  app->filter_ = std::make_unique<net::IpFilter>(*std::move(ip_filter));

  absl::StatusOr<tls::CertificatePolicyOptions> policy_options = PolicyOptions(s.federation_tls);
  if (!policy_options.ok()) return policy_options.status();
  absl::StatusOr<std::unique_ptr<tls::CertificatePolicy>> policy =
      tls::CertificatePolicy::Create(*std::move(policy_options));
  if (!policy.ok()) return Bad("federation_tls", policy.status().message());
  app->policy_ = *std::move(policy);
  // MSC1711 fallback: fingerprints from the verified responses the keyring
  // holds (built below; only consulted after start).
  App* self = app.get();
  tls::FingerprintSource fingerprints = [self](absl::string_view host) {
    absl::flat_hash_set<std::string> out;
    if (self->fetching_ != nullptr) {
      for (std::string& fp : self->fetching_->TlsFingerprintsOf(host)) out.insert(std::move(fp));
    }
    return out;
  };
  app->peer_verifier_ = std::make_unique<tls::PolicyPeerVerifier>(
      *app->policy_, clock, fingerprints, observer);

  net::CaresResolver::Options dns;
  dns.servers = s.dns.servers;
  dns.query_timeout = s.dns.timeout;
  const int max_in_flight = std::max(2, s.dns.max_in_flight);
  for (const auto& [host, addresses] : s.dns.hosts) dns.host_overrides[host] = addresses;
  net::CurlHttpClient::Options http;
  http.connect_timeout = s.fetch.connect_timeout;
  http.tls_handshake_timeout = s.fetch.tls_handshake_timeout;
  http.total_timeout = s.fetch.request_timeout;
  if (s.fetch.well_known_port == 0) return Bad("fetch.well_known_port", "0 is not a port");
  const net::HttpsWellKnownFetcher::Options well_known{5, s.fetch.well_known_port};
  for (auto [lane, name, connections, queries] :
       {std::make_tuple(&app->bulk_, "kv-fetch", bulk_connections,
                        std::max(1, max_in_flight * 3 / 4)),
        std::make_tuple(&app->interactive_, "kv-lookup", max_connections - bulk_connections,
                        std::max(1, max_in_flight - max_in_flight * 3 / 4))}) {
    net::FetchEngine::Options engine;
    engine.name = name;
    engine.max_connections = connections;
    // libcurl would limit per address; the per-destination limit is per
    // server name, in the federation client (many names share an address).
    engine.max_connections_per_host = connections;
    dns.max_in_flight = queries;
    absl::StatusOr<std::unique_ptr<Lane>> made =
        MakeLane(engine, dns, http, well_known, *app->peer_verifier_, *app->filter_);
    if (!made.ok()) return made.status();
    *lane = *std::move(made);
  }
  net::ServerDiscovery::Options discovery;
  discovery.well_known_timeout = s.fetch.well_known_timeout;
  app->discovery_ = std::make_unique<net::ServerDiscovery>(
      app->bulk_->Discovery(), app->interactive_->Discovery(), *app->filter_, clock, discovery);
  app->federation_ = std::make_unique<net::FederationClient>(
      *app->discovery_, *app->bulk_->http, *app->interactive_->http,
      net::FederationClient::Options{
          s.fetch.max_endpoints,
          s.fetch.max_connections_per_host,
          // Each priority's connections are its engine's (above).
          0});

  if (s.fetch.enabled) {
    fetch::KeySources::Options order;
    switch (s.fetch.order) {
      case v1::Config::direct_first:
        order.order = fetch::KeySources::Order::kDirectFirst;
        break;
      case v1::Config::notaries_first:
        order.order = fetch::KeySources::Order::kNotariesFirst;
        break;
      case v1::Config::direct_only:
        order.order = fetch::KeySources::Order::kDirectOnly;
        break;
      default:
        return Bad("fetch.order", NotOneOf(s.fetch.order, v1::Config::FetchOrder_descriptor()));
    }
    order.quorum = s.fetch.quorum;
    const size_t max_keys = s.limits.max_keys_per_response;
    app->direct_ = std::make_unique<fetch::DirectFetcher>(*app->federation_, max_keys);
    fetch::NotaryFetcher::Options notary_options;
    notary_options.batch_size = s.fetch.notary_batch_size;
    notary_options.checker = app->key_pool_.get();
    notary_options.max_keys = max_keys;
    std::vector<fetch::KeyFetcher*> notaries;
    std::set<std::string> notary_names;
    for (int i = 0; i < static_cast<int>(s.fetch.notaries.size()); ++i) {
      absl::StatusOr<core::PinnedNotary> n = Notary(s.fetch.notaries[i], i);
      if (!n.ok()) return n.status();
      // One notary listed twice would count twice towards a quorum.
      if (!notary_names.insert(absl::AsciiStrToLower(n->server_name.view())).second) {
        return Bad(absl::StrCat("fetch.notaries[", i, "].server_name"),
                   absl::StrCat(n->server_name.str(), " is listed more than once"));
      }
      app->notaries_.push_back(
          std::make_unique<fetch::NotaryFetcher>(*std::move(n), *app->federation_, notary_options));
      notaries.push_back(app->notaries_.back().get());
    }
    absl::StatusOr<std::unique_ptr<fetch::KeySources>> sources =
        fetch::KeySources::Create(app->direct_.get(), notaries, order, clock, observer);
    if (!sources.ok()) return Bad("fetch", sources.status().message());
    app->sources_ = *std::move(sources);
  }

  keyring::KeysByServer trusted;
  if (!s.trusted_keys_file.empty()) {
    absl::StatusOr<std::string> text = read_file(s.trusted_keys_file);
    if (!text.ok()) return Bad("trusted_keys_file", text.status().message());
    absl::StatusOr<keyring::KeysByServer> keys = keyring::ParseKeysFile(*text);
    if (!keys.ok()) return Bad("trusted_keys_file", keys.status().message());
    trusted = *std::move(keys);
  }
  app->trusted_ = std::make_unique<keyring::TrustedKeyRing>(std::move(trusted));
  keyring::FetchingKeyRing::Options ring;
  ring.fetch_timeout = s.fetch.budget;
  ring.failure_backoff_initial = s.fetch.failure_backoff;
  ring.failure_backoff_max = s.fetch.failure_backoff_max;
  ring.miss_backoff_initial = s.fetch.miss_backoff;
  ring.miss_backoff_max = s.fetch.miss_backoff_max;
  ring.new_servers_per_second = s.fetch.new_servers_per_second;
  ring.new_servers_burst = s.fetch.new_servers_burst;
  ring.max_bytes = s.limits.keyring_memory_bytes;
  if (s.store.kind == v1::Config::postgres) {
    ring.lease_holder = LeaseHolder();
    ring.lease_time = s.store.lease;
    ring.lease_poll = s.store.lease_poll;
  }
  app->fetching_ = std::make_unique<keyring::FetchingKeyRing>(
      *app->store_, app->sources_.get(), *app->key_pool_, *app->bulk_->engine, clock, observer,
      ring);
  app->fallback_ = std::make_unique<keyring::FallbackKeyRing>(*app->trusted_, *app->fetching_);
  std::vector<keyring::BannedKeys::Entry> banned;
  for (const auto& b : s.banned_keys) banned.push_back({b.server_name, b.key_id, b.public_key});
  absl::StatusOr<keyring::BannedKeys> banned_keys = keyring::BannedKeys::Create(banned);
  if (!banned_keys.ok()) return Bad("banned_keys", banned_keys.status().message());
  app->banned_ = std::make_unique<keyring::BannedKeys>(*std::move(banned_keys));
  app->keyring_ = std::make_unique<keyring::BanningKeyRing>(*app->fallback_, *app->banned_);
  if (s.refresher.enabled && app->sources_ != nullptr) {
    keyring::Refresher::Options r;
    r.interval = s.refresher.interval;
    r.concurrency = s.refresher.concurrency;
    r.min_interval = s.refresher.min_interval;
    app->refresher_ = std::make_unique<keyring::Refresher>(*app->fetching_, clock, observer, r);
  }
  app->checker_ = std::make_unique<tls::CertificateChecker>(*app->policy_, app->federation_.get(),
                                                           clock, fingerprints);

  if (!s.notary_listen.empty()) {
    const config::Settings::NotaryServer& n = s.notary;
    if (absl::Status bad = core::ServerName::Parse(n.server_name).status(); !bad.ok()) {
      return Bad("notary.server_name", bad.message());
    }
    if (n.signing_key_file.empty()) {
      return Bad("notary.signing_key_file", "required with notary_listen");
    }
    absl::StatusOr<std::string> key_text = read_file(n.signing_key_file);
    if (!key_text.ok()) return Bad("notary.signing_key_file", key_text.status().message());
    absl::StatusOr<core::NamedSigningKey> key = core::ParseSigningKeyFile(*key_text);
    if (!key.ok()) return Bad("notary.signing_key_file", key.status().message());
    if (app->direct_ != nullptr) {
      fetch::KeySources::Options direct_only;
      direct_only.order = fetch::KeySources::Order::kDirectOnly;
      absl::StatusOr<std::unique_ptr<fetch::KeySources>> sources =
          fetch::KeySources::Create(app->direct_.get(), {}, direct_only, clock, observer);
      if (!sources.ok()) return Bad("notary", sources.status().message());
      app->notary_sources_ = *std::move(sources);
    }
    keyring::FetchingKeyRing::Options notary_ring = ring;
    notary_ring.report_memory = false;
    if (!notary_ring.lease_holder.empty()) notary_ring.lease_holder += "/notary";
    app->notary_keyring_ = std::make_unique<keyring::FetchingKeyRing>(
        *app->store_, app->notary_sources_.get(), *app->key_pool_, *app->bulk_->engine, clock,
        observer, notary_ring);
    notary::Notary::Options o;
    o.server_name = n.server_name;
    o.limits.max_servers = n.max_servers_per_query;
    o.limits.max_key_ids = n.max_key_ids_per_server;
    o.query_timeout = n.query_timeout;
    o.serve_own_keys = n.serve_own_keys;
    o.own_keys_validity = n.own_keys_validity;
    app->notary_ = std::make_unique<notary::Notary>(*app->notary_keyring_, clock, observer,
                                                    *std::move(key), std::move(o));
  }

  api::VerifierLimits limits;
  limits.max_events_per_batch = s.limits.max_events_per_batch;
  limits.max_event_bytes = s.limits.max_event_bytes;
  app->verifier_ = std::make_unique<api::Verifier>(*app->keyring_, clock, limits, observer,
                                                   app->checker_.get(), cpu);
  diagnose::Diagnoser::Deps diagnose;
  diagnose.discovery = app->discovery_.get();
  diagnose.well_known = app->interactive_->well_known.get();
  diagnose.resolver = app->interactive_->resolver.get();
  diagnose.http = app->interactive_->http.get();
  diagnose.federation = app->federation_.get();
  diagnose.checker = app->checker_.get();
  for (const auto& n : app->notaries_) diagnose.notaries.push_back(n.get());
  diagnose.store = app->store_.get();
  diagnose.clock = &clock;
  diagnose::Diagnoser::Options diagnose_options;
  diagnose_options.max_keys = s.limits.max_keys_per_response;
  app->diagnoser_ = std::make_unique<diagnose::Diagnoser>(std::move(diagnose), diagnose_options);
  (void)log;
  return app;
}

App::~App() { Stop(); }

void App::Start() {
  if (refresher_) refresher_->Start();
}

void App::StopFetching() {
  // Fetches and lookups in flight end with CancelledError, and their
  // callers are answered.
  if (interactive_) interactive_->engine->Stop();
  if (bulk_) bulk_->engine->Stop();
}

void App::Stop() {
  StopFetching();
  if (refresher_) refresher_->Stop();
  if (key_pool_) key_pool_->Stop();
}

std::string App::Describe() const {
  return absl::StrCat("store ", v1::Config::StoreKind_Name(store_kind_), "; fetching ",
                      sources_ ? absl::StrCat("on (", notaries_.size(), " notaries)") : "off",
                      "; refresher ", refresher_ ? "on" : "off", "; notary ",
                      notary_ ? "on" : "off");
}

}  // namespace keyverifier::app
