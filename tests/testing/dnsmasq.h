// Dnsmasq: a real DNS server on a free loopback port, for tests of DNS and
// server discovery. Serves only the records given; every other name under
// the given local domains is NXDOMAIN. Stopped (and waited for) on
// destruction.
#ifndef KEYVERIFIER_TESTS_TESTING_DNSMASQ_H_
#define KEYVERIFIER_TESTS_TESTING_DNSMASQ_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace keyverifier::testing {

class Dnsmasq {
 public:
  struct Records {
    std::vector<std::string> local_domains;  // e.g. "example.test"
    // dnsmasq option values, e.g. "_matrix-fed._tcp.a.test,t.a.test,8448,10,5"
    std::vector<std::string> srv_hosts;
    // "name,ipv4[,ipv6]" (or "name,ipv6")
    std::vector<std::string> host_records;
    // "alias,target"
    std::vector<std::string> cnames;
    // Further command-line options, given last, e.g. "--conf-file=/dir/x.conf"
    // for records written to a file.
    std::vector<std::string> options;
  };

  // Starts dnsmasq and waits until it answers.
  static absl::StatusOr<std::unique_ptr<Dnsmasq>> Start(const Records& records);
  ~Dnsmasq();

  int port() const { return port_; }
  // The c-ares server list naming this server.
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  Dnsmasq(pid_t pid, int port) : pid_(pid), port_(port) {}
  pid_t pid_;
  int port_;
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_TESTING_DNSMASQ_H_
