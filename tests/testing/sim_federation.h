// SimFederation: many Matrix servers at once on loopback, for tests and
// benchmarks of key fetching. sim_federation.py serves servers
// s0.sim.test ... s{N-1}.sim.test and the notary notary.sim.test on one HTTPS
// port (by Host header, a wildcard certificate from a fresh test CA), sinks
// the connections of dead servers on a second port that never answers, and
// counts what it sees (requests, notary batch sizes, connections) on a
// plain-HTTP control port; a dnsmasq serves the SRV records that lead there
// (live servers: live.sim.test:https_port; dead ones: dead.sim.test:dead_port;
// both 127.0.0.1). The server names have no A records (but those in
// Options::well_known), so .well-known lookups fail at once and discovery
// goes on to SRV.
//
// Every server's ed25519 key is deterministic (seed SHA-256 of its name, key
// id "ed25519:sim"), so a test can check what it is given with SigningKeyOf.
//
// Stopped (and waited for) on destruction; the script also exits when the
// process that started it dies. Not thread-safe: one thread drives it.
// Errors: InternalError saying which step (spawning, the ports line, the
// control port's answer) failed.
#ifndef KEYVERIFIER_TESTS_TESTING_SIM_FEDERATION_H_
#define KEYVERIFIER_TESTS_TESTING_SIM_FEDERATION_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/crypto.h"
#include "service/core/server_keys.h"
#include "tests/testing/dnsmasq.h"

namespace keyverifier::testing {

class SimFederation {
 public:
  struct Options {
    int servers = 10;
    // Indices whose SRV records name the dead port.
    std::vector<int> dead;
    // Live servers that answer after slow_delay_ms instead of delay_ms.
    std::vector<int> slow;
    int delay_ms = 0;
    int slow_delay_ms = 10000;
    int notary_delay_ms = 0;
    // valid_until_ts of every response: now + this, rounded up to the second.
    int64_t valid_for_ms = 86400000;
    // Broken DNS, for reports on broken servers (none by default): indices
    // published only under the deprecated _matrix._tcp SRV name; whose SRV
    // target is an alias (alias.sim.test, a CNAME of live.sim.test); with a
    // second SRV record naming the alt port, which serves every server with
    // another key (ed25519:alt).
    std::vector<int> legacy_srv;
    std::vector<int> cname_srv;
    std::vector<int> split_keys;
    // Indices given A records (127.0.0.1) whose /.well-known/matrix/server
    // answers as Configure's "well_known" says (404 until then): valid and
    // hostile delegations and redirects (see sim_federation.py).
    std::vector<int> well_known;
  };

  // What the sim saw since it started or since Reset(). Peaks restart from
  // what is open at Reset().
  struct Stats {
    // host (Host header without port) -> path (without query) -> requests,
    // counted when received.
    std::map<std::string, std::map<std::string, int64_t>> requests;
    // The number of servers each POST /_matrix/key/v2/query asked for, in
    // order (-1 for a body that was no query).
    std::vector<int64_t> post_batch_sizes;
    int64_t requests_in_flight = 0;
    int64_t peak_requests_in_flight = 0;
    // TCP connections on both ports.
    int64_t open_connections = 0;
    int64_t peak_connections = 0;
    int64_t open_https_connections = 0;
    int64_t peak_https_connections = 0;
    int64_t accepted_https_connections = 0;
    int64_t open_dead_connections = 0;
    int64_t peak_dead_connections = 0;
    int64_t accepted_dead_connections = 0;
    // On the https port, by SNI (else the first Host header).
    std::map<std::string, int64_t> open_connections_by_host;
    std::map<std::string, int64_t> peak_connections_by_host;

    int64_t Requests(absl::string_view host, absl::string_view path) const;
    // Over every host.
    int64_t RequestsTo(absl::string_view path) const;
    int64_t PeakConnectionsTo(absl::string_view host) const;
  };

  static constexpr absl::string_view kKeyId = "ed25519:sim";
  static constexpr absl::string_view kServerPath = "/_matrix/key/v2/server";
  static constexpr absl::string_view kQueryPath = "/_matrix/key/v2/query";

  static absl::StatusOr<std::unique_ptr<SimFederation>> Start(const Options& options);
  ~SimFederation();
  SimFederation(const SimFederation&) = delete;
  SimFederation& operator=(const SimFederation&) = delete;

  // "s<i>.sim.test".
  static std::string ServerName(int i);
  std::string notary_name() const { return "notary.sim.test"; }
  // The key whose seed is SHA-256(server_name), for any name.
  static core::Ed25519SigningKey SigningKeyOf(const std::string& server_name);
  // Its public key in unpadded base64, as a keys file or the service's
  // configuration gives it.
  static std::string PublicKeyBase64(const std::string& server_name);
  // The notary as the service's configuration pins it.
  core::PinnedNotary pinned_notary() const;

  // The c-ares server list naming the sim's dnsmasq.
  std::string dns_server() const { return dns_->server(); }
  std::string ca_pem_path() const { return dir_ + "/ca.pem"; }
  const std::string& dir() const { return dir_; }
  int https_port() const { return https_port_; }
  int dead_port() const { return dead_port_; }
  int control_port() const { return control_port_; }
  // The listener split_keys servers' second SRV record names.
  int alt_port() const { return alt_port_; }

  absl::StatusOr<Stats> GetStats() const;
  absl::Status Reset();
  // POST /config: a JSON object with any of delay_ms, notary_delay_ms,
  // slow_delay_ms, valid_for_ms, delays ({server: ms}), slow and dead (lists
  // of servers), and the broken modes (certs, valid_for, key_change,
  // no_version, notary_lies, ...), a server being an index or a name. Each setting given
  // replaces the old one; see sim_federation.py. Servers made dead here are
  // stalled on the https port (their DNS still names it); a server dead at
  // start stays unreachable.
  absl::Status Configure(absl::string_view json);

 private:
  SimFederation(pid_t pid, int stdin_fd, std::string dir)
      : pid_(pid), stdin_fd_(stdin_fd), dir_(std::move(dir)) {}
  // A request to the control port; the body of a 200 answer.
  absl::StatusOr<std::string> Control(absl::string_view method, absl::string_view path,
                                      absl::string_view body) const;

  pid_t pid_;
  int stdin_fd_;  // the script's stdin: it exits when this closes
  std::string dir_;
  int https_port_ = 0;
  int dead_port_ = 0;
  int control_port_ = 0;
  int alt_port_ = 0;
  std::unique_ptr<Dnsmasq> dns_;
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_TESTING_SIM_FEDERATION_H_
