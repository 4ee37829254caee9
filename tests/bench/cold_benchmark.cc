// The cold path on a simulated federation on loopback (not a test): the
// service as deployed (App: fetch engine, discovery over dnsmasq, HTTPS with
// a test CA, SQLite in a fresh data directory) verifies one batch of events
// from servers it has never met; some servers are dead (accept TCP, never
// answer), the live ones answer after a delay standing for the internet.
//
// Scenarios, each run --runs times with a fresh store and keyring:
//  - direct: order direct_only. Target: wall time <= 1.3 x one dead
//    server's budget (connect + request timeouts).
//  - notaries: order notaries_first, one notary answering after the same
//    delay. Target: wall time <= 1.3 x (the notary's delay + the time to
//    verify the same batch warm, measured right after in the same run).
//  - unary: two direct batches in flight, and meanwhile a cold
//    VerifyServerKeys of a live server outside them every 40 ms (they
//    overlap). Target: p99 <= 2 x delay + 50 ms.
// Threads are counted before, during and after each run (they must not grow
// with the fetches in flight), and the resident memory before the keyring
// is built, after the batch, and after it is gone.
//
//   bazel run -c opt //tests/bench:cold_benchmark -- --servers 1000 --runs 5
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "keyverifier/v1/config.pb.h"
#include "service/app/app.h"
#include "service/async/worker_pool.h"
#include "service/config/config.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"
#include "service/observe/log.h"
#include "tests/bench/measure.h"
#include "tests/testing/free_port.h"
#include "tests/testing/sim_federation.h"

namespace keyverifier::bench {
namespace {

using testing::SimFederation;

struct Flags {
  int servers = 1000;
  int dead_percent = 10;
  int delay_ms = 100;
  int events = 2000;
  int runs = 5;
  int connect_ms = 2000;
  int request_ms = 4000;
  int unary = 50;
  std::string only;  // one scenario: direct, notaries or unary
};

std::string TempDir() {
  std::string dir = absl::StrCat(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                                 "/keyverifier-cold-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) std::abort();
  return dir;
}

// A room version 10 message from `server`, signed with its sim key.
v1::VerifyEventSignatureRequest Event(const std::string& server, int n) {
  absl::StatusOr<core::Value> event = core::ParseJson(absl::StrCat(
      R"({"type":"m.room.message","room_id":"!r:)", server, R"(","sender":"@a:)", server,
      R"(","origin_server_ts":)", absl::ToUnixMillis(absl::Now()) - 1000,
      R"(,"depth":5,"prev_events":[],"auth_events":[],"content":{"msgtype":"m.text","body":"event )",
      n, R"("}})"));
  if (!event.ok()) std::abort();
  const core::Ed25519SigningKey key = SimFederation::SigningKeyOf(server);
  if (!core::HashAndSignEvent(&*event, **core::LookupRoomVersion("10"), server,
                              std::string(SimFederation::kKeyId), key)
           .ok()) {
    std::abort();
  }
  v1::VerifyEventSignatureRequest out;
  out.set_event_json(core::ToJson(*event));
  out.set_room_version("10");
  return out;
}

v1::Config Config(const SimFederation& sim, const Flags& f, const std::string& order,
                  const std::string& data_dir) {
  v1::Config c;
  c.set_data_dir(data_dir);
  c.mutable_store()->set_kind(v1::Config::sqlite);
  c.mutable_limits()->set_max_events_per_batch(static_cast<uint32_t>(f.events));
  c.mutable_limits()->set_max_event_bytes(65536);
  c.mutable_dns()->set_servers(sim.dns_server());
  c.mutable_outbound()->add_allowed("127.0.0.0/8");
  c.mutable_federation_tls()->set_ca_mode(v1::Config::replace);
  c.mutable_federation_tls()->add_ca_files(sim.ca_pem_path());
  v1::Config::Fetch* fetch = c.mutable_fetch();
  v1::Config::FetchOrder fetch_order;
  if (!v1::Config::FetchOrder_Parse(order, &fetch_order)) std::abort();
  fetch->set_order(fetch_order);
  fetch->set_connect_timeout_ms(static_cast<uint32_t>(f.connect_ms));
  fetch->set_tls_handshake_timeout_ms(static_cast<uint32_t>(f.connect_ms));
  fetch->set_request_timeout_ms(static_cast<uint32_t>(f.request_ms));
  fetch->set_well_known_port(static_cast<uint32_t>(*testing::FreeLoopbackPort()));
  fetch->set_notary_batch_size(static_cast<uint32_t>(f.servers));
  v1::Config::Fetch::Notary* notary = fetch->add_notaries();
  notary->set_server_name(sim.notary_name());
  (*notary->mutable_verify_keys())[std::string(SimFederation::kKeyId)] =
      SimFederation::PublicKeyBase64(sim.notary_name());
  c.mutable_refresher()->set_disabled(true);
  return c;
}

// One service as deployed, on a fresh store.
struct Service {
  Service(const SimFederation& sim, const Flags& f, const std::string& order)
      : log(observe::LogLevel::kError, std::cerr, clock) {
    pool = *async::WorkerPool::Create(2, 1 << 16);
    absl::StatusOr<std::unique_ptr<app::App>> a =
        app::App::Create(config::Effective(Config(sim, f, order, TempDir())), nullptr, clock,
                         observe::NoopObserver(), log, pool.get());
    if (!a.ok()) {
      std::fprintf(stderr, "%s\n", std::string(a.status().message()).c_str());
      std::abort();
    }
    app = *std::move(a);
  }
  ~Service() {
    app->Stop();
    pool->Stop();
  }
  SystemClock clock;
  observe::Logger log;
  std::unique_ptr<async::WorkerPool> pool;
  std::unique_ptr<app::App> app;
};

// Starts a batch; `done` is notified with its outcome counts.
struct Batch {
  absl::Notification done;
  int valid = 0, errors = 0;
  absl::Duration took;
};
void StartBatch(api::Verifier& v, const v1::VerifyEventsRequest& req, Batch* b) {
  const absl::Time start = absl::Now();
  v.VerifyEvents(req, absl::Now() + absl::Seconds(120),
                 [b, start](absl::StatusOr<v1::VerifyEventsResponse> r) {
                   b->took = absl::Now() - start;
                   if (r.ok()) {
                     for (const v1::EventResult& e : r->results()) {
                       (e.has_verdict() && e.verdict().outcome() == v1::EventVerdict::VALID
                            ? b->valid
                            : b->errors)++;
                     }
                   }
                   b->done.Notify();
                 });
}


}  // namespace
}  // namespace keyverifier::bench

int main(int argc, char** argv) {
  using namespace keyverifier;         // NOLINT
  using namespace keyverifier::bench;  // NOLINT
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--only")) {
      f.only = argv[i + 1];
      continue;
    }
    int* target = nullptr;
    if (!std::strcmp(argv[i], "--servers")) target = &f.servers;
    if (!std::strcmp(argv[i], "--dead_percent")) target = &f.dead_percent;
    if (!std::strcmp(argv[i], "--delay_ms")) target = &f.delay_ms;
    if (!std::strcmp(argv[i], "--events")) target = &f.events;
    if (!std::strcmp(argv[i], "--runs")) target = &f.runs;
    if (!std::strcmp(argv[i], "--unary")) target = &f.unary;
    if (target == nullptr || !absl::SimpleAtoi(argv[i + 1], target) || *target < 0) {
      std::fprintf(stderr,
                   "usage: cold_benchmark [--servers N] [--dead_percent P] [--delay_ms MS] "
                   "[--events N] [--runs N] [--unary N] [--only direct|notaries|unary]\n");
      return 2;
    }
  }
  SimFederation::Options o;
  // The batch's servers, then others for the unary lookups.
  o.servers = f.servers * 3 + f.unary * f.runs + 1;
  const int every = f.dead_percent > 0 ? 100 / f.dead_percent : 0;
  for (int i = 0; i < 3 * f.servers && every > 0; ++i) {
    if (i % every == every - 1) o.dead.push_back(i);
  }
  o.delay_ms = f.delay_ms;
  o.notary_delay_ms = f.delay_ms;
  absl::StatusOr<std::unique_ptr<SimFederation>> sim = SimFederation::Start(o);
  if (!sim.ok()) {
    std::fprintf(stderr, "sim: %s\n", std::string(sim.status().message()).c_str());
    return 1;
  }
  auto batch_of = [&](int first) {
    v1::VerifyEventsRequest req;
    for (int e = 0; e < f.events; ++e) {
      *req.add_events() = Event(SimFederation::ServerName(first + e % f.servers), e);
    }
    return req;
  };
  const v1::VerifyEventsRequest batch = batch_of(0);
  const v1::VerifyEventsRequest batch2 = batch_of(f.servers);
  const v1::VerifyEventsRequest batch3 = batch_of(2 * f.servers);
  const double dead_budget_s = (f.connect_ms + f.request_ms) / 1000.0;
  // Memory before any keyring exists (the sim client, the requests built).
  const long rss_base = RssKb();
  const long heap_base = HeapInUseKb();
  std::printf("CPU: %s; %d servers (%d%% dead), live ones answer after %d ms; %d events\n",
              CpuModel().c_str(),
              f.servers, f.dead_percent, f.delay_ms, f.events);

  std::vector<double> direct, notaries, notary_ratios, unary_p99;
  int unary_next = 3 * f.servers;
  for (int run = 0; run < f.runs; ++run) {
    auto wanted = [&](const char* scenario) { return f.only.empty() || f.only == scenario; };
    if (wanted("direct")) {  // direct_only
      const int threads_before = ThreadCount();
      Service s(**sim, f, "direct_only");
      const int threads_idle = ThreadCount();
      Batch b;
      StartBatch(s.app->verifier(), batch, &b);
      int threads_peak = threads_idle;
      while (!b.done.WaitForNotificationWithTimeout(absl::Milliseconds(20))) {
        threads_peak = std::max(threads_peak, ThreadCount());
      }
      const long rss_after = RssKb();
      direct.push_back(absl::ToDoubleSeconds(b.took));
      std::printf("direct   run %d: %.3f s (target <= %.2f s: %.3f of it); %d valid, %d errors; "
                  "threads %d -> %d idle, %d at most in flight; RSS %ld -> %ld KiB\n",
                  run, direct.back(), 1.3 * dead_budget_s, direct.back() / (1.3 * dead_budget_s),
                  b.valid, b.errors, threads_before, threads_idle, threads_peak, rss_base,
                  rss_after);
    }
    if (wanted("notaries")) {  // notaries_first, then the same batch warm
      Service s(**sim, f, "notaries_first");
      Batch cold, warm;
      StartBatch(s.app->verifier(), batch, &cold);
      cold.done.WaitForNotification();
      StartBatch(s.app->verifier(), batch, &warm);
      warm.done.WaitForNotification();
      const double target = 1.3 * (f.delay_ms / 1000.0 + absl::ToDoubleSeconds(warm.took));
      notaries.push_back(absl::ToDoubleSeconds(cold.took));
      notary_ratios.push_back(notaries.back() / target);
      std::printf("notaries run %d: %.3f s (target <= %.3f s = 1.3 x (%.3f + warm %.3f): %.2f of "
                  "it); %d valid, %d errors\n",
                  run, notaries.back(), target, f.delay_ms / 1000.0,
                  absl::ToDoubleSeconds(warm.took), notaries.back() / target, cold.valid,
                  cold.errors);
    }
    if (wanted("unary")) {  // unary cold lookups while two batches wait on their dead servers
      Service s(**sim, f, "direct_only");
      Batch b1, b2;
      StartBatch(s.app->verifier(), batch2, &b1);
      StartBatch(s.app->verifier(), batch3, &b2);
      // One lookup every 40 ms while the batches wait on their dead servers
      // (each answered on its own: they overlap), every one of a server
      // never met.
      struct Lookups {
        absl::Mutex mu;
        std::vector<double> ms;
        int pending = 0;
      } lookups;
      const absl::Time window_start = absl::Now();
      for (int i = 0; i < f.unary; ++i) {
        absl::SleepFor(window_start + absl::Milliseconds(50 + 40 * i) - absl::Now());
        v1::VerifyServerKeysRequest* req = new v1::VerifyServerKeysRequest;
        req->set_server_name(SimFederation::ServerName(unary_next++));
        {
          absl::MutexLock lock(&lookups.mu);
          ++lookups.pending;
        }
        const absl::Time start = absl::Now();
        s.app->verifier().VerifyServerKeys(
            *req, absl::Now() + absl::Seconds(30),
            [req, start, &lookups](absl::StatusOr<v1::VerifyServerKeysResponse> r) {
              if (!r.ok()) {
                std::fprintf(stderr, "unary: %s\n", std::string(r.status().message()).c_str());
              }
              delete req;
              absl::MutexLock lock(&lookups.mu);
              lookups.ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
              --lookups.pending;
            });
      }
      // Fair only if the batches were still waiting when the last one left.
      const bool overlapped = !b1.done.HasBeenNotified() && !b2.done.HasBeenNotified();
      {
        absl::MutexLock lock(&lookups.mu);
        lookups.mu.Await(absl::Condition(
            +[](int* pending) { return *pending == 0; }, &lookups.pending));
      }
      std::vector<double> ms = lookups.ms;
      b1.done.WaitForNotification();
      b2.done.WaitForNotification();
      std::sort(ms.begin(), ms.end());
      const double p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
      unary_p99.push_back(p99);
      std::printf("unary    run %d: p50 %.1f ms, p99 %.1f ms (target <= %d ms: %.2f of it)%s\n",
                  run, ms[ms.size() / 2], p99, 2 * f.delay_ms + 50, p99 / (2 * f.delay_ms + 50),
                  overlapped ? "" : " (a batch finished first: not a fair run)");
    }
  }
  // Every keyring is gone: what the allocator kept goes back to the system.
  malloc_trim(0);
  std::printf("medians over %d runs: direct %.3f s (%.3f of target), notaries %.3f s "
              "(%.2f of its run's target), unary p99 %.1f ms (%.2f of target)\n",
              f.runs, Median(direct), Median(direct) / (1.3 * dead_budget_s), Median(notaries),
              Median(notary_ratios), Median(unary_p99), Median(unary_p99) / (2 * f.delay_ms + 50));
  std::printf("memory with every keyring gone: RSS %ld KiB (%ld before the first), heap in use "
              "%ld KiB (%ld before the first)\n",
              RssKb(), rss_base, HeapInUseKb(), heap_base);
  return 0;
}
