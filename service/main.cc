// keyverifier: the service binary. Wiring only: flags in, servers started,
// signals handled. Today it serves the standard gRPC health service and server
// reflection; the verification API is added by the service layer.
//
//   keyverifier [--listen HOST:PORT] [--grace_seconds N]
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace {

struct Options {
  std::string listen = "127.0.0.1:8470";
  int grace_seconds = 10;
};

int Usage(const std::string& why) {
  std::cerr << why << "\nusage: keyverifier [--listen HOST:PORT] [--grace_seconds N]\n";
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
    } else if (a == "--grace_seconds") {
      if (!absl::SimpleAtoi(value, &opt.grace_seconds) || opt.grace_seconds < 0) {
        return Usage("--grace_seconds must be a non-negative integer");
      }
    } else {
      return Usage(absl::StrCat("unknown flag ", a));
    }
  }

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
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    Log("error", absl::StrCat("cannot listen on ", opt.listen));
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  Log("info", absl::StrCat("serving on ", opt.listen, " (port ", port, ")"));

  int sig = 0;
  sigwait(&signals, &sig);
  Log("info", absl::StrCat("signal ", sig, ": draining for up to ",
                           opt.grace_seconds, "s"));
  health->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(opt.grace_seconds));
  server->Wait();
  Log("info", "stopped");
  return 0;
}
