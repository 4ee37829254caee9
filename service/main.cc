// keyverifier: the service binary. Wiring only: flags in, dependencies built,
// servers started, signals handled.
//
//   keyverifier [--listen HOST:PORT] [--metrics_listen HOST:PORT]
//               [--grace_seconds N] [--trusted_keys FILE] [--workers N]
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/api/grpc_service.h"
#include "service/api/verifier.h"
#include "service/api/worker_pool.h"
#include "service/clock/clock.h"
#include "service/keyring/trusted_keys.h"
#include "service/observe/grpc_interceptor.h"
#include "service/observe/metrics.h"
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

namespace {

constexpr char kVersion[] = "0.1.0";

struct Options {
  std::string listen = "127.0.0.1:8470";
  std::string metrics_listen = "127.0.0.1:9470";
  int grace_seconds = 10;
  std::string trusted_keys;
  int workers = 0;  // 0: one per core
};

int Usage(const std::string& why) {
  std::cerr << why
            << "\nusage: keyverifier [--listen HOST:PORT] [--metrics_listen HOST:PORT]"
               " [--grace_seconds N] [--trusted_keys FILE] [--workers N]\n";
  return 2;
}

void Log(const std::string& level, const std::string& msg) {
  // One JSON object per line on stderr.
  std::string escaped;
  for (char c : msg) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  std::cerr << "{\"ts_ms\":" << absl::ToUnixMillis(absl::Now()) << ",\"level\":\""
            << level << "\",\"msg\":\"" << escaped << "\"}\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    size_t eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Usage(absl::StrCat(a, " needs a value"));
    }
    if (a == "--listen") {
      opt.listen = value;
    } else if (a == "--metrics_listen") {
      opt.metrics_listen = value;
    } else if (a == "--grace_seconds") {
      if (!absl::SimpleAtoi(value, &opt.grace_seconds) || opt.grace_seconds < 0) {
        return Usage("--grace_seconds must be a non-negative integer");
      }
    } else if (a == "--trusted_keys") {
      opt.trusted_keys = value;
    } else if (a == "--workers") {
      if (!absl::SimpleAtoi(value, &opt.workers) || opt.workers < 0) {
        return Usage("--workers must be a non-negative integer");
      }
    } else {
      return Usage(absl::StrCat("unknown flag ", a));
    }
  }

  keyverifier::keyring::KeysByServer trusted;
  if (!opt.trusted_keys.empty()) {
    std::ifstream in(opt.trusted_keys, std::ios::binary);
    if (!in) {
      Log("error", absl::StrCat("cannot open --trusted_keys ", opt.trusted_keys));
      return 2;
    }
    auto keys = keyverifier::keyring::ParseKeysFile(
        std::string(std::istreambuf_iterator<char>(in), {}));
    if (!keys.ok()) {
      Log("error", std::string(keys.status().message()));
      return 2;
    }
    trusted = *std::move(keys);
  }
  keyverifier::SystemClock clock;
  auto registry = std::make_shared<prometheus::Registry>();
  keyverifier::observe::Metrics metrics(*registry, kVersion);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(opt.metrics_listen);
  } catch (const std::exception& e) {
    Log("error", absl::StrCat("cannot serve metrics on ", opt.metrics_listen,
                              ": ", e.what()));
    return 1;
  }
  exposer->RegisterCollectable(registry);
  keyverifier::keyring::TrustedKeyRing keyring(std::move(trusted));
  keyverifier::api::Verifier verifier(keyring, clock, {}, metrics);
  int workers = opt.workers > 0
                    ? opt.workers
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  auto pool = keyverifier::api::WorkerPool::Create(workers, 1024 * workers);
  if (!pool.ok()) {
    Log("error", std::string(pool.status().message()));
    return 2;
  }
  keyverifier::api::KeyVerifierService service(verifier, **pool, clock);

  // Signals are taken synchronously by the main thread below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(opt.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<keyverifier::observe::MetricsInterceptorFactory>(metrics, clock));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.SetMaxReceiveMessageSize(16 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    Log("error", absl::StrCat("cannot listen on ", opt.listen));
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  Log("info", absl::StrCat("serving on ", opt.listen, " (port ", port, ")"));
  for (int p : exposer->GetListeningPorts()) {
    Log("info", absl::StrCat("metrics on ", opt.metrics_listen, " (port ", p, ")"));
  }

  int sig = 0;
  sigwait(&signals, &sig);
  Log("info", absl::StrCat("signal ", sig, ": draining for up to ",
                           opt.grace_seconds, "s"));
  health->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(opt.grace_seconds));
  server->Wait();
  (*pool)->Stop();
  Log("info", "stopped");
  return 0;
}
