// Load generator for the gRPC service, with its baselines measured in the same
// run on the same machine:
//   - bare verify, 2 threads: libsodium crypto_sign_verify_detached in a loop
//     (the ceiling for VerifyEvents);
//   - trivial server: a gRPC service whose VerifyEventSignature does exactly
//     one bare verify (the ceiling for unary VerifyEventSignature), and whose
//     VerifyServerKeys answers with a prepared copy of the service's own
//     answer (gRPC alone: the ceiling for cached VerifyServerKeys);
//   - the real KeyVerifierService (the keyring as deployed, keys in memory;
//     worker pool; metrics) for
//     VerifyEventSignature, VerifyEvents (64 events a call) and cached
//     VerifyServerKeys.
// Servers run in this process on loopback; clients use gRPC's asynchronous API with
// a fixed number of calls in flight. Reports calls/s, events/s, p50/p99/p99.9
// latency and CPU use, then the ratios the targets are stated in.
//
//   bazel run -c opt //tests/bench:loadgen -- [--seconds S] [--rounds N]
//       [--servers N] [--only unary|batch|keys]
// (--only runs one group of scenarios with its baseline, e.g. for a profile.)
//
// With --targets, the load generator drives service processes running
// elsewhere instead (no servers of its own, no baselines):
//
//   loadgen --targets HOST:PORT[,HOST:PORT...] [--alone HOST:PORT]
//       --event_server NAME [--in_flight N] [--seconds S] [--rounds N]
//       [--only unary|keys] [--json]
//
// Calls go round-robin over the targets, --in_flight (32) in all, for cached
// VerifyServerKeys of NAME and unary VerifyEventSignature of an event from
// NAME (the fixture's message, signed with the simulated federation's key
// for NAME, tests/testing/sim_federation.h): the processes fetch NAME's keys
// once, at the first lookup before the warm-up round. Each target's own
// calls/s and latency are reported next to the total. With --alone, every
// round also sends the same load to that one target alone, next to the
// spread load (alternating which goes first). --json ends the output with
// one line "RESULT {...}" holding every round's figures.
#include <pthread.h>
#include <sodium.h>
#include <sys/resource.h>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "keyverifier/v1/service.grpc.pb.h"
#include "service/api/grpc_service.h"
#include "service/api/verifier.h"
#include "service/async/worker_pool.h"
#include "tests/bench/measure.h"
#include "tests/fakes/fake_async.h"
#include "service/clock/clock.h"
#include "service/keyring/fetching_keyring.h"
#include "service/keyring/trusted_keys.h"
#include "service/store/memory_key_store.h"
#include "service/observe/metrics.h"
#include "tests/bench/fixture.h"
#include "tests/testing/server_name.h"
#include "tests/testing/sim_federation.h"

namespace keyverifier::bench {
namespace {

using ::keyverifier::testing::Name;

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Result {
  std::string name;
  double calls_per_s = 0;
  double items_per_s = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0;
  double cpu_cores = 0;  // CPU seconds per wall second
  int errors = 0;
};

void Print(const Result& r) {
  std::printf("%-34s %10.0f calls/s %10.0f items/s  p50 %6.2f ms  p99 %6.2f ms"
              "  p99.9 %6.2f ms  cpu %.2f cores  errors %d\n",
              r.name.c_str(), r.calls_per_s, r.items_per_s, r.p50_ms, r.p99_ms,
              r.p999_ms, r.cpu_cores, r.errors);
}

// Bare verifies on `threads` threads for `duration`.
Result BareVerify(int threads, absl::Duration duration) {
  const Fixture& f = GetFixture();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> done{0};
  double cpu0 = CpuSeconds();
  absl::Time t0 = absl::Now();
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&] {
      pthread_setname_np(pthread_self(), "bare-verify");
      int64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        n += BareVerify(f);
      }
      done += n;
    });
  }
  absl::SleepFor(duration);
  stop = true;
  for (auto& t : pool) t.join();
  double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  Result r;
  r.name = "bare verify, " + std::to_string(threads) + " threads";
  r.calls_per_s = r.items_per_s = done / wall;
  r.cpu_cores = (CpuSeconds() - cpu0) / wall;
  return r;
}

using CallStarter = std::function<void(std::function<void(bool)>)>;

// The figures of `latencies_ms` (sorted here) over `wall` seconds.
Result Summarize(const std::string& name, std::vector<double> latencies_ms, int errors,
                 double wall, double cpu_seconds) {
  Result r;
  r.name = name;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms.empty()
               ? 0
               : latencies_ms[std::min(latencies_ms.size() - 1,
                                       static_cast<size_t>(p * latencies_ms.size()))];
  };
  r.calls_per_s = r.items_per_s = latencies_ms.size() / wall;
  r.p50_ms = pct(0.50);
  r.p99_ms = pct(0.99);
  r.p999_ms = pct(0.999);
  r.cpu_cores = cpu_seconds / wall;
  r.errors = errors;
  return r;
}

// As Drive, with the calls spread round-robin over `starts` (one per target;
// each issues one call to its target). Returns the total first, then each
// target's own figures (the CPU is this process's, the client's, in the
// total only).
std::vector<Result> DriveSpread(const std::string& name, int in_flight, absl::Duration duration,
                                const std::vector<CallStarter>& starts,
                                const std::vector<std::string>& labels) {
  const size_t n = starts.size();
  absl::Mutex mu;
  std::vector<std::vector<double>> latencies_ms(n);
  std::vector<int> errors(n, 0);
  int outstanding = 0;
  std::atomic<bool> stop{false};
  std::atomic<size_t> next{0};
  std::function<void()> issue = [&] {
    const size_t k = next.fetch_add(1, std::memory_order_relaxed) % n;
    absl::Time t = absl::Now();
    starts[k]([&, k, t](bool ok) {
      double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
      bool again;
      {
        absl::MutexLock lock(&mu);
        latencies_ms[k].push_back(ms);
        if (!ok) ++errors[k];
        again = !stop.load();
        if (!again) --outstanding;
      }
      if (again) issue();
    });
  };
  double cpu0 = CpuSeconds();
  absl::Time t0 = absl::Now();
  {
    absl::MutexLock lock(&mu);
    outstanding = in_flight;
  }
  for (int i = 0; i < in_flight; ++i) issue();
  absl::SleepFor(duration);
  stop = true;
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](int* left) { return *left == 0; }, &outstanding));
  }
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  const double cpu = CpuSeconds() - cpu0;
  std::vector<double> all;
  int all_errors = 0;
  for (size_t k = 0; k < n; ++k) {
    all.insert(all.end(), latencies_ms[k].begin(), latencies_ms[k].end());
    all_errors += errors[k];
  }
  std::vector<Result> out;
  out.push_back(Summarize(name, std::move(all), all_errors, wall, cpu));
  for (size_t k = 0; k < n; ++k) {
    out.push_back(Summarize("  " + labels[k], std::move(latencies_ms[k]), errors[k], wall, 0));
  }
  return out;
}

// Keeps `in_flight` calls going for `duration`. `start(done)` issues one call
// and must invoke done(ok) when it completes.
Result Drive(const std::string& name, int in_flight, int items_per_call,
             absl::Duration duration, const CallStarter& start) {
  Result r = DriveSpread(name, in_flight, duration, {start}, {name})[0];
  r.items_per_s = r.calls_per_s * items_per_call;
  return r;
}

// Completion queues, each drained by a thread of its own that hands every
// event to `handle(tag, ok)`; shut down and joined when destroyed (a
// server's queues only after the server has shut down).
template <typename Queue>
class PolledQueues {
 public:
  using Handler = void (*)(void* tag, bool ok);
  ~PolledQueues() {
    for (const auto& queue : queues_) queue->Shutdown();
    for (std::thread& t : threads_) t.join();
  }
  void Add(std::unique_ptr<Queue> queue) { queues_.push_back(std::move(queue)); }
  void Start(const char* thread_name, Handler handle) {
    for (const auto& queue : queues_) {
      threads_.emplace_back([thread_name, handle, cq = queue.get()] {
        pthread_setname_np(pthread_self(), thread_name);
        void* tag = nullptr;
        bool ok = false;
        while (cq->Next(&tag, &ok)) handle(tag, ok);
      });
    }
  }
  const std::vector<std::unique_ptr<Queue>>& queues() const { return queues_; }
  Queue* Pick() { return queues_[next_++ % queues_.size()].get(); }

 private:
  std::vector<std::unique_ptr<Queue>> queues_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

// The baseline server, answering inline on the thread that polls the call's
// completion queue, with as many such threads as the service has:
//   - VerifyEventSignature with one bare verify (the ceiling for unary
//     event verification);
//   - VerifyServerKeys with a prepared response, the service's own answer
//     for the same server (the ceiling for cached lookups: gRPC alone).
class TrivialService {
 public:
  // What every VerifyServerKeys call is answered with; set before the first.
  void SetKeysAnswer(v1::VerifyServerKeysResponse answer) { keys_answer_ = std::move(answer); }
  void Register(grpc::ServerBuilder& builder, int threads) {
    builder.RegisterService(&async_);
    for (int i = 0; i < threads; ++i) queues_.Add(builder.AddCompletionQueue());
  }
  void Start() {
    using S = v1::KeyVerifier::AsyncService;
    for (const auto& queue : queues_.queues()) {
      new Call<v1::VerifyEventSignatureRequest, v1::EventVerdict>(
          *this, queue.get(), &S::RequestVerifyEventSignature, &TrivialService::AnswerEvent);
      new Call<v1::VerifyServerKeysRequest, v1::VerifyServerKeysResponse>(
          *this, queue.get(), &S::RequestVerifyServerKeys, &TrivialService::AnswerKeys);
    }
    queues_.Start("trivial", [](void* tag, bool ok) { static_cast<CallBase*>(tag)->Proceed(ok); });
  }

 private:
  struct CallBase {
    virtual ~CallBase() = default;
    virtual void Proceed(bool ok) = 0;
  };
  template <typename Req, typename Resp>
  struct Call final : CallBase {
    using Request = void (v1::KeyVerifier::AsyncService::*)(
        grpc::ServerContext*, Req*, grpc::ServerAsyncResponseWriter<Resp>*,
        grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
    using Answer = void (TrivialService::*)(Resp*) const;
    Call(TrivialService& s, grpc::ServerCompletionQueue* cq, Request request_method,
         Answer answer)
        : service(s), queue(cq), request_method(request_method), answer(answer) {
      (s.async_.*request_method)(&context, &request, &responder, cq, cq, this);
    }
    void Proceed(bool ok) override {
      if (finished || !ok) {
        delete this;
        return;
      }
      new Call(service, queue, request_method, answer);
      (service.*answer)(&response);
      finished = true;
      responder.Finish(response, grpc::Status::OK, this);
    }
    TrivialService& service;
    grpc::ServerCompletionQueue* const queue;
    const Request request_method;
    const Answer answer;
    grpc::ServerContext context;
    Req request;
    Resp response;
    grpc::ServerAsyncResponseWriter<Resp> responder{&context};
    bool finished = false;
  };
  void AnswerEvent(v1::EventVerdict* out) const {
    out->set_outcome(BareVerify(GetFixture()) ? v1::EventVerdict::VALID
                                              : v1::EventVerdict::INVALID);
  }
  void AnswerKeys(v1::VerifyServerKeysResponse* out) const { *out = keys_answer_; }

  v1::VerifyServerKeysResponse keys_answer_;
  v1::KeyVerifier::AsyncService async_;
  PolledQueues<grpc::ServerCompletionQueue> queues_;
};

// A server in this process on a loopback port, and a channel to it.
struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::KeyVerifier::Stub> stub;
};

template <typename Service>
RunningServer Start(Service& service, int threads) {
  RunningServer s;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  service.Register(builder, threads);
  s.server = builder.BuildAndStart();
  service.Start();
  s.stub = v1::KeyVerifier::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  return s;
}

// The client side: gRPC's asynchronous API, completion queues each polled by
// a thread of their own; a finished call runs its completion on that thread.
struct ClientTag {
  virtual ~ClientTag() = default;
  virtual void Complete() = 0;
};
class ClientQueues : public PolledQueues<grpc::CompletionQueue> {
 public:
  explicit ClientQueues(int threads) {
    for (int i = 0; i < threads; ++i) Add(std::make_unique<grpc::CompletionQueue>());
    Start("client", [](void* tag, bool) { static_cast<ClientTag*>(tag)->Complete(); });
  }
};

template <typename Req, typename Resp>
using Prepare = std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>>(
    grpc::ClientContext*, const Req&, grpc::CompletionQueue*)>;

// A `start` for Drive: one call of the request `pick` gives, through
// `prepare`; good when the status is OK and `check` accepts the response.
// What it returns must outlive its calls (Drive waits for them).
template <typename Req, typename Resp>
std::function<void(std::function<void(bool)>)> Caller(
    ClientQueues& queues, std::function<const Req&()> pick, Prepare<Req, Resp> prepare,
    std::function<bool(const Resp&)> check) {
  return [&queues, pick, prepare, check](std::function<void(bool)> done) {
    struct Call final : ClientTag {
      grpc::ClientContext context;
      Resp response;
      grpc::Status status;
      std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
      const std::function<bool(const Resp&)>* check = nullptr;
      std::function<void(bool)> done;
      void Complete() override {
        bool ok = status.ok() && (*check)(response);
        std::function<void(bool)> d = std::move(done);
        delete this;
        d(ok);
      }
    };
    auto* call = new Call;
    call->check = &check;
    call->done = std::move(done);
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    call->reader = prepare(&call->context, pick(), queues.Pick());
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  };
}

Prepare<v1::VerifyEventSignatureRequest, v1::EventVerdict> VerifyEventCall(
    v1::KeyVerifier::Stub* stub) {
  return [stub](auto* c, const auto& req, auto* cq) {
    return stub->PrepareAsyncVerifyEventSignature(c, req, cq);
  };
}

// Runs subjects next to their baseline, one after another in the order given
// or in reverse (the order alternates between rounds), and prints them in the
// order given, baseline first.
std::vector<Result> RunTogether(bool forward,
                                const std::vector<std::function<Result()>>& runs) {
  std::vector<Result> results(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    const size_t at = forward ? i : runs.size() - 1 - i;
    results[at] = runs[at]();
  }
  for (const Result& r : results) Print(r);
  return results;
}


// --- Driving service processes elsewhere (--targets) -------------------------

std::string Json(const Result& r) {
  return absl::StrFormat(
      R"({"calls_per_s":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"cpu_cores":%.3f,)"
      R"("errors":%d})",
      r.calls_per_s, r.p50_ms, r.p99_ms, r.p999_ms, r.cpu_cores, r.errors);
}

struct TargetsFlags {
  std::vector<std::string> targets;
  std::string alone;  // empty: no alone run
  std::string event_server;
  int in_flight = 32;
  double seconds = 1;
  int rounds = 15;
  std::string only;
  bool json = false;
};

int RunTargets(const TargetsFlags& flags) {
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string alone_note = flags.alone.empty() ? "" : " (alone: " + flags.alone + ")";
  std::printf("targets %s%s; %d in flight; %g s per scenario; %d rounds; %u cores; CPU %s\n",
              absl::StrJoin(flags.targets, ",").c_str(), alone_note.c_str(),
              flags.in_flight, flags.seconds, flags.rounds, std::thread::hardware_concurrency(),
              CpuModel().c_str());
  auto channel = [](const std::string& target) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    return v1::KeyVerifier::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  };
  std::vector<std::unique_ptr<v1::KeyVerifier::Stub>> stubs;
  for (const std::string& target : flags.targets) stubs.push_back(channel(target));
  std::unique_ptr<v1::KeyVerifier::Stub> alone_stub;
  if (!flags.alone.empty()) alone_stub = channel(flags.alone);

  v1::VerifyServerKeysRequest keys_request;
  keys_request.set_server_name(flags.event_server);
  v1::VerifyEventSignatureRequest event;
  event.set_room_version("10");
  event.set_event_json(SignedEvent(flags.event_server, std::string(testing::SimFederation::kKeyId),
                                   testing::SimFederation::SigningKeyOf(flags.event_server),
                                   absl::ToUnixMillis(absl::Now()) - 1000));
  // Every process knows the server's keys before the warm-up: the first
  // lookup fetches them (once for processes sharing a store), the event
  // then verifies.
  std::vector<v1::KeyVerifier::Stub*> every(stubs.size());
  for (size_t k = 0; k < stubs.size(); ++k) every[k] = stubs[k].get();
  if (alone_stub) every.push_back(alone_stub.get());
  for (v1::KeyVerifier::Stub* stub : every) {
    grpc::ClientContext keys_context;
    keys_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::VerifyServerKeysResponse keys;
    grpc::Status status = stub->VerifyServerKeys(&keys_context, keys_request, &keys);
    if (!status.ok() || keys.verify_keys_size() != 1) {
      std::fprintf(stderr, "VerifyServerKeys %s: %s\n", flags.event_server.c_str(),
                   status.ok() ? "not one key" : status.error_message().c_str());
      return 1;
    }
    grpc::ClientContext event_context;
    event_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::EventVerdict verdict;
    status = stub->VerifyEventSignature(&event_context, event, &verdict);
    if (!status.ok() || verdict.outcome() != v1::EventVerdict::VALID) {
      std::fprintf(stderr, "VerifyEventSignature: %s\n",
                   status.ok() ? verdict.DebugString().c_str() : status.error_message().c_str());
      return 1;
    }
  }

  ClientQueues client(threads);
  auto one_event = [&]() -> const v1::VerifyEventSignatureRequest& { return event; };
  auto one_server = [&]() -> const v1::VerifyServerKeysRequest& { return keys_request; };
  auto valid = [](const v1::EventVerdict& v) { return v.outcome() == v1::EventVerdict::VALID; };
  auto one_key = [](const v1::VerifyServerKeysResponse& r) { return r.verify_keys_size() == 1; };
  auto unary_start = [&](v1::KeyVerifier::Stub* stub) -> CallStarter {
    return Caller<v1::VerifyEventSignatureRequest, v1::EventVerdict>(
        client, one_event, VerifyEventCall(stub), valid);
  };
  auto keys_start = [&](v1::KeyVerifier::Stub* stub) -> CallStarter {
    return Caller<v1::VerifyServerKeysRequest, v1::VerifyServerKeysResponse>(
        client, one_server,
        [stub](auto* c, const auto& req, auto* cq) {
          return stub->PrepareAsyncVerifyServerKeys(c, req, cq);
        },
        one_key);
  };
  struct Group {
    const char* name;  // unary, keys
    const char* label;
    std::function<CallStarter(v1::KeyVerifier::Stub*)> start;
    std::vector<std::string> rounds_json;
    std::vector<double> spread_total, alone;
  };
  std::vector<Group> groups;
  if (flags.only.empty() || flags.only == "keys") {
    groups.push_back({"keys", "cached VerifyServerKeys", keys_start, {}, {}, {}});
  }
  if (flags.only.empty() || flags.only == "unary") {
    groups.push_back({"unary", "VerifyEventSignature", unary_start, {}, {}, {}});
  }
  const absl::Duration d = absl::Seconds(flags.seconds);
  for (int round = 0; round <= flags.rounds; ++round) {
    std::printf(round == 0 ? "-- warm-up round (not counted)\n" : "-- round %d\n", round);
    const bool alone_first = round % 2 == 1;
    for (Group& g : groups) {
      std::vector<CallStarter> starts;
      for (const auto& stub : stubs) starts.push_back(g.start(stub.get()));
      std::vector<Result> spread;
      Result alone;
      auto spread_run = [&] {
        spread = DriveSpread(absl::StrCat(g.label, ", ", flags.targets.size(), " targets, ",
                                          flags.in_flight, " in flight"),
                             flags.in_flight, d, starts, flags.targets);
      };
      auto alone_run = [&] {
        alone = Drive(absl::StrCat(g.label, ", ", flags.alone, " alone, ", flags.in_flight,
                                   " in flight"),
                      flags.in_flight, 1, d, g.start(alone_stub.get()));
      };
      if (alone_stub && alone_first) alone_run();
      spread_run();
      if (alone_stub && !alone_first) alone_run();
      if (alone_stub) Print(alone);
      for (const Result& r : spread) Print(r);
      if (round == 0) continue;
      std::vector<std::string> per_target;
      for (size_t k = 1; k < spread.size(); ++k) per_target.push_back(Json(spread[k]));
      g.rounds_json.push_back(absl::StrCat(
          R"({"total":)", Json(spread[0]), R"(,"targets":[)", absl::StrJoin(per_target, ","),
          "]", alone_stub ? absl::StrCat(R"(,"alone":)", Json(alone)) : "", "}"));
      g.spread_total.push_back(spread[0].calls_per_s);
      if (alone_stub) g.alone.push_back(alone.calls_per_s);
    }
  }
  std::printf("\nmedians over %d rounds:\n", flags.rounds);
  for (const Group& g : groups) {
    std::printf("%s: %.0f calls/s over %zu targets (%.0f per target)", g.label,
                Median(g.spread_total), flags.targets.size(),
                Median(g.spread_total) / static_cast<double>(flags.targets.size()));
    if (!g.alone.empty()) {
      std::vector<double> ratio;
      for (size_t i = 0; i < g.alone.size(); ++i) ratio.push_back(g.spread_total[i] / g.alone[i]);
      std::printf("; %s alone %.0f calls/s; total / alone = %.3f", flags.alone.c_str(),
                  Median(g.alone), Median(ratio));
    }
    std::printf("\n");
  }
  if (flags.json) {
    std::vector<std::string> parts;
    for (const Group& g : groups) {
      parts.push_back(absl::StrCat("\"", g.name, "\":[", absl::StrJoin(g.rounds_json, ","), "]"));
    }
    std::printf("RESULT {\"cpu\":\"%s\",%s}\n", CpuModel().c_str(),
                absl::StrJoin(parts, ",").c_str());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace keyverifier::bench

int main(int argc, char** argv) {
  using namespace keyverifier;        // NOLINT
  using namespace keyverifier::bench; // NOLINT
  // Short rounds, many of them: this kind of machine changes speed from one
  // second to the next, so each ratio compares measurements taken a moment
  // apart (in alternating order), and the median of the rounds is reported.
  double seconds = 1;
  int rounds = 15;
  int many = 100000;  // servers in the keyring for the "many servers" scenario
  std::string only;   // empty: every scenario
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 &&
        !(absl::SimpleAtod(argv[i + 1], &seconds) && seconds > 0)) {
      std::fprintf(stderr, "--seconds takes a positive number, not %s\n", argv[i + 1]);
      return 2;
    }
    if (std::strcmp(argv[i], "--rounds") == 0 && !absl::SimpleAtoi(argv[i + 1], &rounds)) {
      return 2;
    }
    if (std::strcmp(argv[i], "--servers") == 0 && !absl::SimpleAtoi(argv[i + 1], &many)) {
      return 2;
    }
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  }
  // Service processes elsewhere: see the comment at the top.
  keyverifier::bench::TargetsFlags targets;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--json") == 0) targets.json = true;
    if (!has_value) continue;
    if (std::strcmp(argv[i], "--targets") == 0) {
      targets.targets = absl::StrSplit(argv[i + 1], ',', absl::SkipEmpty());
    }
    if (std::strcmp(argv[i], "--alone") == 0) targets.alone = argv[i + 1];
    if (std::strcmp(argv[i], "--event_server") == 0) targets.event_server = argv[i + 1];
    if (std::strcmp(argv[i], "--in_flight") == 0 &&
        !(absl::SimpleAtoi(argv[i + 1], &targets.in_flight) && targets.in_flight > 0)) {
      return 2;
    }
  }
  if (!targets.targets.empty()) {
    if (targets.event_server.empty()) {
      std::fprintf(stderr, "--targets needs --event_server NAME (a simulated federation server)\n");
      return 2;
    }
    if (!only.empty() && only != "unary" && only != "keys") {
      std::fprintf(stderr, "with --targets, --only takes unary or keys, not %s\n", only.c_str());
      return 2;
    }
    if (sodium_init() < 0) return 1;
    targets.seconds = seconds;
    targets.rounds = rounds;
    targets.only = only;
    return keyverifier::bench::RunTargets(targets);
  }
  if (!only.empty() && only != "unary" && only != "batch" && only != "keys") {
    std::fprintf(stderr, "--only takes unary, batch or keys, not %s\n", only.c_str());
    return 2;
  }
  auto runs = [&only](const char* group) { return only.empty() || only == group; };
  if (sodium_init() < 0) return 1;
  // As in the service binary (see service/main.cc).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const absl::Duration d = absl::Seconds(seconds);
  const Fixture& f = GetFixture();
  std::printf("event: %zu bytes; %g s per scenario; %d rounds; %u cores\n",
              f.event_json.size(), seconds, rounds, std::thread::hardware_concurrency());

  v1::VerifyEventSignatureRequest event;
  event.set_event_json(f.event_json);
  event.set_room_version(std::string(f.room->id));
  auto one_event = [&]() -> const v1::VerifyEventSignatureRequest& { return event; };
  auto valid = [](const v1::EventVerdict& v) {
    return v.outcome() == v1::EventVerdict::VALID;
  };

  // The keyring as deployed: pinned keys (none here) in front of the fetching
  // keyring, whose memory holds the server's keys (loaded from the store by a
  // first lookup, as after a fetch).
  keyring::TrustedKeyRing pinned({});
  std::unique_ptr<store::KeyStore> key_store = *store::MemoryKeyStore::Create();
  if (!key_store->StoreResponse(FixtureKeyResponse(), kServer, kNow).ok()) return 1;
  // Many more servers, for cached lookups spread over a large keyring.
  std::vector<v1::VerifyServerKeysRequest> spread(static_cast<size_t>(many));
  for (int i = 0; i < many; ++i) {
    core::ServerKeys k = FixtureKeyResponse();
    k.server_name = absl::StrCat("server", i, ".example.org");
    k.raw_json = absl::StrCat(k.raw_json, " ");  // distinct bytes, same size
    if (!key_store->StoreResponse(k, k.server_name, kNow).ok()) return 1;
    spread[i].set_server_name(k.server_name);
  }
  SystemClock clock;
  keyring::FetchingKeyRing::Options ring_options;
  ring_options.max_servers = static_cast<size_t>(many) + 16;
  testing::InlineExecutor store_work;  // store-only: nothing is fetched
  testing::ManualScheduler no_timers;    // every lookup here has no deadline
  keyring::FetchingKeyRing fetching(*key_store, nullptr, store_work, no_timers, clock,
                                    observe::NoopObserver(), ring_options);
  keyring::FallbackKeyRing keyring(pinned, fetching);
  {
    keyring::KeyQuery warm(Name(kServer));
    if (!keyring.GetKeysAndWait(warm, absl::InfiniteFuture()).ok()) return 1;
    for (const auto& r : spread) {  // all in memory, as after their fetches
      warm.server_name = Name(r.server_name());
      if (!keyring.GetKeysAndWait(warm, absl::InfiniteFuture()).ok()) return 1;
    }
  }
  // Metrics as in production: verdicts and per-RPC metrics through the
  // observer.
  prometheus::Registry registry;
  observe::Metrics metrics(registry, "loadgen");
  // Workers and completion-queue threads as the service binary has them by
  // default: one of each per core.
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto pool = *async::WorkerPool::Create(threads, 1 << 16);
  api::Verifier verifier(keyring, clock, {}, metrics, nullptr, pool.get());
  api::KeyVerifierService service(verifier, *pool, clock, {}, metrics);
  RunningServer s = Start(service, threads);
  TrivialService trivial;
  RunningServer t = Start(trivial, threads);
  v1::VerifyServerKeysRequest keys_request;
  keys_request.set_server_name(kServer);
  {  // The trivial server answers lookups with the service's own answer.
    grpc::ClientContext context;
    v1::VerifyServerKeysResponse answer;
    if (!s.stub->VerifyServerKeys(&context, keys_request, &answer).ok()) return 1;
    trivial.SetKeysAnswer(std::move(answer));
  }
  ClientQueues client(threads);

  v1::VerifyEventsRequest batch;
  for (int i = 0; i < 64; ++i) *batch.add_events() = event;

  std::vector<double> unary_ratio, batch_ratio, cached_calls, cached_p99, many_ratio,
      trivial_keys_calls, keys_ratio;
  // Round 0 warms up (connections open their flow-control windows, threads
  // and allocator caches fill) and is left out of the medians.
  for (int round = 0; round <= rounds; ++round) {
    std::printf(round == 0 ? "-- warm-up round (not counted)\n" : "-- round %d\n", round);
    // Each subject next to its baseline, first one then the other first.
    const bool baseline_first = round % 2 == 1;
    auto trivial_run = [&] {
      return Drive("trivial server, unary, 32 in flight", 32, 1, d,
                   Caller<v1::VerifyEventSignatureRequest, v1::EventVerdict>(
                       client, one_event, VerifyEventCall(t.stub.get()), valid));
    };
    auto unary_run = [&] {
      return Drive("service VerifyEventSignature, 32", 32, 1, d,
                   Caller<v1::VerifyEventSignatureRequest, v1::EventVerdict>(
                       client, one_event, VerifyEventCall(s.stub.get()), valid));
    };
    auto events_run = [&] {
      return Drive("service VerifyEvents x64, 4 in flight", 4, 64, d,
                   Caller<v1::VerifyEventsRequest, v1::VerifyEventsResponse>(
                       client, [&]() -> const v1::VerifyEventsRequest& { return batch; },
                       [stub = s.stub.get()](auto* c, const auto& req, auto* cq) {
                         return stub->PrepareAsyncVerifyEvents(c, req, cq);
                       },
                       [](const v1::VerifyEventsResponse& r) {
                         return r.results_size() == 64 &&
                                r.results(63).verdict().outcome() == v1::EventVerdict::VALID;
                       }));
    };
    const bool counted = round > 0;
    if (runs("unary")) {
      std::vector<Result> r = RunTogether(baseline_first, {trivial_run, unary_run});
      if (counted) unary_ratio.push_back(r[1].calls_per_s / r[0].calls_per_s);
    }
    if (runs("batch")) {
      std::vector<Result> r =
          RunTogether(baseline_first, {[&] { return BareVerify(2, d); }, events_run});
      if (counted) batch_ratio.push_back(r[1].items_per_s / r[0].items_per_s);
    }
    if (runs("keys")) {
      // Cached lookups of one server next to the prepared answer of the
      // trivial server (the same bytes), and spread over many servers.
      auto keys_run = [&](const std::string& name, v1::KeyVerifier::Stub* stub,
                          std::function<const v1::VerifyServerKeysRequest&()> pick) {
        return Drive(name, 32, 1, d,
                     Caller<v1::VerifyServerKeysRequest, v1::VerifyServerKeysResponse>(
                         client, std::move(pick),
                         [stub](auto* c, const auto& req, auto* cq) {
                           return stub->PrepareAsyncVerifyServerKeys(c, req, cq);
                         },
                         [](const v1::VerifyServerKeysResponse& r) {
                           return r.verify_keys_size() == 1;
                         }));
      };
      auto one_server = [&]() -> const v1::VerifyServerKeysRequest& { return keys_request; };
      std::atomic<size_t> next{0};
      std::vector<Result> r = RunTogether(
          baseline_first,
          {[&] { return keys_run("trivial server, prepared keys, 32", t.stub.get(), one_server); },
           [&] { return keys_run("service VerifyServerKeys cached, 32", s.stub.get(), one_server); },
           [&] {
             return keys_run(absl::StrCat("VerifyServerKeys over ", many, " servers"),
                             s.stub.get(), [&]() -> const v1::VerifyServerKeysRequest& {
                               return spread[next++ % spread.size()];
                             });
           }});
      if (counted) {
        trivial_keys_calls.push_back(r[0].calls_per_s);
        keys_ratio.push_back(r[1].calls_per_s / r[0].calls_per_s);
        cached_calls.push_back(r[1].calls_per_s);
        cached_p99.push_back(r[1].p99_ms);
        many_ratio.push_back(r[2].calls_per_s / r[1].calls_per_s);
      }
    }
  }
  s.server->Shutdown();
  t.server->Shutdown();
  service.Stop();
  pool->Stop();

  std::printf("\nmedians over %d rounds:\n", rounds);
  if (runs("unary")) {
    std::printf("unary VerifyEventSignature / trivial server = %.3f (target >= 0.90)\n",
                Median(unary_ratio));
  }
  if (runs("batch")) {
    std::printf("VerifyEvents events/s / bare verify on 2 threads = %.3f (target >= 0.80)\n",
                Median(batch_ratio));
  }
  if (runs("keys")) {
    std::printf("cached VerifyServerKeys: %.0f calls/s (target >= 35000), p99 %.2f ms "
                "(target <= 5)\n",
                Median(cached_calls), Median(cached_p99));
    std::printf("  the trivial server's prepared answer: %.0f calls/s; cached VerifyServerKeys "
                "/ trivial server = %.3f\n",
                Median(trivial_keys_calls), Median(keys_ratio));
    std::printf("cached VerifyServerKeys over %d servers / over one server = %.3f "
                "(target: no degradation)\n",
                many, Median(many_ratio));
  }
  return 0;
}
