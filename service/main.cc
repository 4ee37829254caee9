// keyverifier: the service binary. Wiring only: configuration in (defaults,
// file, flags), dependencies built, servers started, signals handled.
// See `keyverifier --help` and protos/keyverifier/v1/config.proto.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/synchronization/mutex.h"
#include "service/api/grpc_service.h"
#include "service/api/tls_credentials.h"
#include "service/api/verifier.h"
#include "service/async/worker_pool.h"
#include "service/clock/clock.h"
#include "service/config/config.h"
#include "service/app/app.h"
#include "service/observe/log.h"
#include "service/observe/logging_observer.h"
#include "service/observe/metrics.h"
#include "service/notary/http_listener.h"
#include "service/notary/notary.h"
#include "service/io/file.h"
#include "service/tls/serving_certificate.h"

namespace {

constexpr char kVersion[] = "0.1.0";

// Config, keys and certificate files are read whole, from disk.
const keyverifier::io::ReadFile ReadFile = keyverifier::io::ReadFileFromDisk;

// Tells the observer what a certificate watcher found.
void Report(keyverifier::observe::Observer& observer, absl::string_view listener,
            keyverifier::tls::ServingCertificateWatcher::Outcome outcome,
            const keyverifier::tls::ServingCertificateWatcher& watcher) {
  using Outcome = keyverifier::tls::ServingCertificateWatcher::Outcome;
  if (outcome == Outcome::kUnchanged) return;
  const keyverifier::tls::ServingCertificate& c = watcher.current();
  observer.OnServingCertificate(
      listener, keyverifier::tls::OutcomeName(outcome),
      outcome == Outcome::kRefused ? std::string(watcher.error().message())
                                   : absl::StrCat(c.subject, " sha256:", c.fingerprint),
      c.not_after);
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built with mutex deadlock detection on, which costs a
  // graph update on every lock; a production server does not want it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::find(args.begin(), args.end(), "--help") != args.end()) {
    std::cout << keyverifier::config::FlagsUsage();
    return 0;
  }
  // Run from `bazel run`, relative paths mean the caller's directory.
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(wd) != 0) std::cerr << "cannot enter " << wd << "\n";
  }
  keyverifier::SystemClock clock;
  absl::StatusOr<keyverifier::v1::Config> loaded =
      keyverifier::config::LoadConfig(args, ReadFile);
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n" << keyverifier::config::FlagsUsage();
    return 2;
  }
  // Every setting in force, defaults applied: what the rest reads.
  const keyverifier::config::Settings config = keyverifier::config::Effective(*loaded);
  keyverifier::observe::Logger log(*keyverifier::observe::ParseLogLevel(config.log_level),
                                   std::cerr, clock);

  // Signals are taken synchronously by the main thread below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (mkdir(config.data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    log.Error("cannot create data_dir", {{"data_dir", config.data_dir}});
    return 1;
  }
  // With TLS, the files are checked here (a set that does not check out
  // stops the start, naming the file) and read again every tls.reload below.
  std::optional<keyverifier::tls::ServingCertificateWatcher> grpc_certificate;
  std::shared_ptr<keyverifier::api::TlsServerCredentials> tls_credentials;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!config.tls.cert_file.empty()) {
    absl::StatusOr<keyverifier::tls::ServingCertificateWatcher> watcher =
        keyverifier::tls::ServingCertificateWatcher::Create(
            {config.tls.cert_file, config.tls.key_file, config.tls.client_ca_file}, ReadFile);
    if (!watcher.ok()) {
      log.Error("cannot set up TLS", {{"error", watcher.status().message()}});
      return 2;
    }
    grpc_certificate.emplace(*std::move(watcher));
    tls_credentials = keyverifier::api::TlsServerCredentials::Create(grpc_certificate->current());
    credentials = tls_credentials;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  keyverifier::observe::Metrics metrics(*registry, kVersion);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(config.metrics_listen);
  } catch (const std::exception& e) {
    log.Error("cannot serve metrics",
              {{"address", config.metrics_listen}, {"error", e.what()}});
    return 1;
  }
  exposer->RegisterCollectable(registry);

  keyverifier::observe::LoggingObserver observer(metrics, log);
  const int workers = config.workers;
  auto pool = keyverifier::async::WorkerPool::Create(workers, 1024 * workers);
  if (!pool.ok()) {
    log.Error("cannot start workers", {{"error", pool.status().message()}});
    return 2;
  }
  absl::StatusOr<std::unique_ptr<keyverifier::app::App>> app =
      keyverifier::app::App::Create(config, ReadFile, clock, observer, log, pool->get());
  if (!app.ok()) {
    log.Error("cannot start", {{"error", app.status().message()}});
    return 2;
  }
  keyverifier::api::Verifier& verifier = (*app)->verifier();
  keyverifier::api::KeyVerifierService service(
      verifier, **pool, clock,
      {config.tls.allowed_client_names.begin(), config.tls.allowed_client_names.end()},
      observer, config.limits.max_call, config.limits.max_pending_request_bytes);

  service.set_diagnoser(&(*app)->diagnoser());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, credentials, &port);
  service.Register(builder, workers);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.limits.max_request_bytes));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    log.Error("cannot listen", {{"address", config.listen}});
    return 1;
  }
  service.Start();
  (*app)->Start();
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  log.Info(absl::StrCat("serving on ", config.listen, " (port ", port, ")"),
           {{"components", (*app)->Describe()},
            {"tls", config.tls.cert_file.empty() ? "off" : "on"},
            {"mutual_tls", config.tls.client_ca_file.empty() ? "off" : "on"}});
  for (int p : exposer->GetListeningPorts()) {
    log.Info(absl::StrCat("metrics on ", config.metrics_listen, " (port ", p, ")"));
  }
  std::unique_ptr<keyverifier::notary::HttpListener> notary_listener;
  if (keyverifier::notary::Notary* notary = (*app)->notary()) {
    const keyverifier::config::Settings::NotaryServer& n = config.notary;
    keyverifier::notary::HttpListener::Options o;
    o.listen = config.notary_listen;
    o.cert_file = n.cert_file;
    o.key_file = n.key_file;
    o.max_body_bytes = n.max_request_bytes;
    o.requests_per_second = n.requests_per_second;
    o.burst = n.burst;
    o.trusted_proxies = n.trusted_proxies;
    o.reload_interval = n.reload;
    o.on_certificate = [&observer](keyverifier::tls::ServingCertificateWatcher::Outcome outcome,
                                   const keyverifier::tls::ServingCertificateWatcher& watcher) {
      Report(observer, "notary", outcome, watcher);
    };
    auto listener = keyverifier::notary::HttpListener::Start(
        o,
        [notary](keyverifier::notary::HttpRequest request, keyverifier::notary::Respond respond) {
          notary->Handle(std::move(request), std::move(respond));
        },
        clock);
    if (!listener.ok()) {
      log.Error("cannot serve the notary endpoints",
                {{"address", config.notary_listen}, {"error", listener.status().message()}});
      return 1;
    }
    notary_listener = *std::move(listener);
    log.Info(absl::StrCat("notary on ", config.notary_listen, " (port ",
                          notary_listener->port(), ")"),
             {{"server_name", n.server_name}, {"https", n.cert_file.empty() ? "off" : "on"}});
  }

  // The main thread waits for a signal, and meanwhile reads the gRPC port's
  // certificate files again every tls.reload.
  if (grpc_certificate) {
    Report(observer, "grpc", keyverifier::tls::ServingCertificateWatcher::Outcome::kChanged,
           *grpc_certificate);
  }
  int sig = 0;
  for (;;) {
    if (!grpc_certificate) {
      sigwait(&signals, &sig);
      break;
    }
    const timespec every = absl::ToTimespec(std::max(config.tls.reload, absl::Seconds(1)));
    sig = sigtimedwait(&signals, nullptr, &every);
    if (sig > 0) break;
    const keyverifier::tls::ServingCertificateWatcher::Outcome outcome = grpc_certificate->Check();
    if (outcome == keyverifier::tls::ServingCertificateWatcher::Outcome::kChanged) {
      tls_credentials->Update(grpc_certificate->current());
    }
    Report(observer, "grpc", outcome, *grpc_certificate);
  }
  log.Info(absl::StrCat("signal ", sig, ": draining for up to ",
                        absl::ToInt64Seconds(config.grace), "s"));
  health->SetServingStatus(false);
  // The metrics endpoint's HTTP server takes up to two seconds to stop (its
  // listener polls in two-second rounds): it stops during the drain, not
  // after it.
  std::thread metrics_stop([&exposer] { exposer.reset(); });
  // New calls are refused at once; calls in flight have the grace period.
  // Calls still waiting for keys after it are answered when their fetches
  // are cancelled; then the service stops, so the process exits within the
  // grace and a moment.
  const absl::Time grace_end = absl::Now() + config.grace;
  absl::Notification drained;
  std::thread shutdown([&] {
    server->Shutdown(absl::ToChronoTime(grace_end));
    drained.Notify();
  });
  if (!drained.WaitForNotificationWithDeadline(grace_end)) {
    log.Info("grace period over: cancelling the key fetches still in flight");
  }
  (*app)->StopFetching();
  if (notary_listener) notary_listener->Stop();
  shutdown.join();
  server->Wait();
  service.Stop();
  (*pool)->Stop();
  (*app)->Stop();
  app->reset();  // closes the key store
  metrics_stop.join();
  log.Info("stopped");
  return 0;
}
