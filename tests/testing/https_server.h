// HttpsServer: the scripted HTTPS server of https_server.py on a loopback
// port, with its own test CA. Stopped (and waited for) on destruction.
#ifndef KEYVERIFIER_TESTS_TESTING_HTTPS_SERVER_H_
#define KEYVERIFIER_TESTS_TESTING_HTTPS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace keyverifier::testing {

class HttpsServer {
 public:
  struct Options {
    std::vector<std::string> names = {"localhost", "127.0.0.1"};
    std::string routes_json = "{}";  // see https_server.py
    std::string min_tls = "1.2";
    std::string max_tls = "1.3";
  };
  static absl::StatusOr<std::unique_ptr<HttpsServer>> Start(const Options& options);
  ~HttpsServer();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string ca_pem_path() const { return dir_ + "/ca.pem"; }
  // The requests served so far, one JSON object per line.
  std::vector<std::string> Requests() const;

 private:
  HttpsServer(pid_t pid, int port, std::string dir)
      : pid_(pid), port_(port), dir_(std::move(dir)) {}
  pid_t pid_;
  int port_;
  std::string dir_;
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_TESTING_HTTPS_SERVER_H_
