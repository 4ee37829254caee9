// FetchEngine: the one event loop on which all outbound network work runs:
// libcurl's multi interface (socket callbacks) and one c-ares channel, both
// driven by epoll on a single thread, plus timers and posted tasks. The
// number of threads is fixed (one) whatever the number of transfers and
// lookups in flight; thousands in flight are fine.
//
// Bounds: at most `max_connections` connections open at once and at most
// `max_connections_per_host` per destination host; transfers beyond them wait
// in libcurl's queue (their time budget runs while they wait: libcurl itself
// does not time out a queued transfer, AddTransfer's deadline does).
//
// CurlHttpClient and CaresResolver are its users; the rest of the service
// sees it as an async::Scheduler (timers) and async::Executor (tasks on the
// loop; keep them short, they hold up every transfer).
//
// Thread-safe: every public method except Stop may be called from any
// thread, including the loop's own (callbacks may start new transfers).
// Stop() cancels what is in flight: every transfer's and lookup's callback
// runs with CancelledError, every pending timer task runs at once, posted
// tasks run, then the loop thread exits and is joined; afterwards new work
// completes at once with CancelledError (Post returns false, RunAt runs its
// task inline). Stop is idempotent and must not be called from the loop
// thread (it would wait for itself: there it only asks the loop to stop, and
// the destructor, on another thread, joins). The destructor stops. A timer
// task that re-arms itself must not do so when it runs early because of a
// stop.
#ifndef KEYVERIFIER_SERVICE_NET_FETCH_ENGINE_H_
#define KEYVERIFIER_SERVICE_NET_FETCH_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/async/callback.h"

typedef void CURL;

namespace keyverifier::net {

class FetchEngine final : public async::Scheduler, public async::Executor {
 public:
  struct Options {
    // Connections open at once, in all and per destination host.
    int max_connections = 256;
    int max_connections_per_host = 4;
    // The loop thread's name (top -H, perf; at most 15 characters).
    std::string name = "kv-fetch";
  };
  static absl::StatusOr<std::unique_ptr<FetchEngine>> Create(Options options);
  ~FetchEngine() override;

  // async::Executor: runs `task` on the loop thread.
  bool Post(async::Task task) override;
  // async::Scheduler
  TimerId RunAt(absl::Time when, async::Task task) override;
  bool Cancel(TimerId id) override;

  // Runs a prepared libcurl easy handle to completion; `done` gets its
  // result code on the loop thread (CURLE_ABORTED_BY_CALLBACK after Stop).
  // The handle stays the caller's (it must live until `done` has run).
  void AddTransfer(CURL* easy, absl::AnyInvocable<void(int curl_code)> done);
  // The same, ended at `deadline` whatever state it is in: a transfer still
  // running then is removed and `done` gets CURLE_OPERATION_TIMEDOUT.
  // libcurl's CURLOPT_TIMEOUT only starts to bite once a transfer has a
  // connection slot, so a queued transfer would otherwise wait for those
  // ahead of it, however long their budgets.
  void AddTransfer(CURL* easy, absl::Time deadline,
                   absl::AnyInvocable<void(int curl_code)> done);
  // Budgets for a transfer's phases (libcurl's connect timeout covers TCP
  // and TLS together, and its timeouts count time spent queued for a
  // connection slot). Each runs from the moment the transfer's connection
  // attempt begins: time queued for a slot counts towards none of them, only
  // towards the deadline.
  struct Phases {
    // Until the TCP connection is made.
    absl::Duration connect = absl::InfiniteDuration();
    // Until the TLS handshake is done, from the moment of connecting.
    absl::Duration tls_handshake = absl::InfiniteDuration();
    // The whole request.
    absl::Duration request = absl::InfiniteDuration();
  };
  // `done`'s code when a phase overran its budget (not CURLcodes).
  static constexpr int kConnectOverrun = 1000;
  static constexpr int kHandshakeOverrun = 1001;
  static constexpr int kRequestOverrun = 1002;
  // The same, also ended when a phase overruns its budget (`done` gets
  // kConnectOverrun, kHandshakeOverrun or kRequestOverrun): a peer that accepts connections
  // and never completes a handshake costs the handshake's budget, not the
  // whole request's.
  void AddTransfer(CURL* easy, absl::Time deadline, Phases phases,
                   absl::AnyInvocable<void(int curl_code)> done);

  // The c-ares channel lives on the loop: `start` runs there with it
  // (an ares_channel, as void*) to issue queries. If the engine has stopped,
  // `start` runs with nullptr on the calling thread.
  void WithDns(absl::AnyInvocable<void(void* channel)> start);
  // Applies c-ares settings to the loop's channel before the first query:
  // server list (c-ares CSV; empty: the system's), per-try timeout, tries,
  // and the resolv.conf to read instead of /etc/resolv.conf (tests; empty:
  // the system's). With explicit servers, /etc/hosts is not read (answers
  // come from those servers alone). Every channel treats names as absolute:
  // resolv.conf's search domains are never appended. It replaces the loop's
  // channel and returns once the loop uses the new one; lookups still on the
  // old one end cancelled, so call it before lookups start. Errors:
  // InvalidArgumentError for a bad server list, timeout or tries.
  absl::Status ConfigureDns(const std::string& servers, absl::Duration query_timeout,
                            int tries, const std::string& resolv_conf = "");

  // Whether the caller runs on the loop thread.
  bool InLoop() const;
  // Transfers in flight: added and not yet completed (tests, metrics).
  // DNS lookups are not counted: c-ares 1.18 cannot say how many it holds.
  int in_flight() const;
  void Stop();

 private:
  class Impl;
  explicit FetchEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_FETCH_ENGINE_H_
