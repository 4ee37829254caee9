// Where VerifyEvents spends its time without the transport: the Verifier on a
// 64-event batch (keys in the fetching keyring's memory, metrics as
// deployed), with and without the protobuf encoding a gRPC call adds, next to
// 64 bare libsodium verifies in the same run.
//
//   bazel run -c opt //tests/bench:verifier_benchmark
#include <sodium.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "prometheus/registry.h"
#include "service/api/verifier.h"
#include "service/clock/clock.h"
#include "service/keyring/fetching_keyring.h"
#include "service/keyring/trusted_keys.h"
#include "service/observe/metrics.h"
#include "service/store/memory_key_store.h"
#include "tests/bench/fixture.h"
#include "tests/fakes/fake_async.h"

namespace keyverifier::bench {
namespace {

constexpr int kBatch = 64;

struct World {
  World() {
    store = *store::MemoryKeyStore::Create();
    if (!store->StoreResponse(FixtureKeyResponse(), kServer, kNow).ok()) std::abort();
    fetching = std::make_unique<keyring::FetchingKeyRing>(
        *store, nullptr, store_work, no_timers, clock, observe::NoopObserver(),
        keyring::FetchingKeyRing::Options());
    keys = std::make_unique<keyring::FallbackKeyRing>(pinned, *fetching);
    metrics = std::make_unique<observe::Metrics>(registry, "bench");
    verifier = std::make_unique<api::Verifier>(*keys, clock, api::VerifierLimits{}, *metrics);
    v1::VerifyEventSignatureRequest event;
    event.set_event_json(GetFixture().event_json);
    event.set_room_version(std::string(GetFixture().room->id));
    for (int i = 0; i < kBatch; ++i) *batch.add_events() = event;
    wire = batch.SerializeAsString();
    // The keys into the keyring's memory, as after the first event.
    if (!verifier->Wait(&api::Verifier::VerifyEventSignature, event, absl::InfiniteFuture()).ok()) {
      std::abort();
    }
  }
  SystemClock clock;
  testing::InlineExecutor store_work;
  testing::ManualScheduler no_timers;
  keyring::TrustedKeyRing pinned{{}};
  std::unique_ptr<store::KeyStore> store;
  std::unique_ptr<keyring::FetchingKeyRing> fetching;
  std::unique_ptr<keyring::FallbackKeyRing> keys;
  prometheus::Registry registry;
  std::unique_ptr<observe::Metrics> metrics;
  std::unique_ptr<api::Verifier> verifier;
  v1::VerifyEventsRequest batch;
  std::string wire;
};

World& GetWorld() {
  static World* w = new World();
  return *w;
}

void BM_Bare64(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      bool ok = BareVerify(f);
      benchmark::DoNotOptimize(ok);
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_Bare64);

void BM_VerifierBatch64(benchmark::State& state) {
  World& w = GetWorld();
  for (auto _ : state) {
    absl::StatusOr<v1::VerifyEventsResponse> r =
        w.verifier->Wait(&api::Verifier::VerifyEvents, w.batch, absl::InfiniteFuture());
    if (!r.ok() || r->results(kBatch - 1).verdict().outcome() != v1::EventVerdict::VALID) {
      state.SkipWithError("batch not valid");
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_VerifierBatch64);

// Plus what protobuf costs a call: parse the request, encode the response.
void BM_VerifierBatch64WithProto(benchmark::State& state) {
  World& w = GetWorld();
  for (auto _ : state) {
    v1::VerifyEventsRequest req;
    req.ParseFromString(w.wire);
    absl::StatusOr<v1::VerifyEventsResponse> r =
        w.verifier->Wait(&api::Verifier::VerifyEvents, req, absl::InfiniteFuture());
    std::string out = r->SerializeAsString();
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_VerifierBatch64WithProto);

// One event as the unary call's fast path answers it, and the same event
// through the signing core alone: the difference is the Verifier's own work
// (key lookups, the verdict message, metrics).
void BM_VerifierOne(benchmark::State& state) {
  World& w = GetWorld();
  const v1::VerifyEventSignatureRequest& event = w.batch.events(0);
  for (auto _ : state) {
    std::optional<absl::StatusOr<v1::EventVerdict>> r =
        w.verifier->TryVerifyEventSignature(event);
    if (!r || !r->ok() || (*r)->outcome() != v1::EventVerdict::VALID) {
      state.SkipWithError("event not valid");
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifierOne);

void BM_CoreOne(benchmark::State& state) {
  const Fixture& f = GetFixture();
  const core::KeyLookup keys = FixtureKeys(f);
  for (auto _ : state) {
    bool valid = FullPathValid(f, keys);
    if (!valid) state.SkipWithError("event not valid");
    benchmark::DoNotOptimize(valid);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CoreOne);

}  // namespace
}  // namespace keyverifier::bench

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  std::vector<char*> args(argv, argv + argc);
  static char kReps[] = "--benchmark_repetitions=5";
  static char kInterleave[] = "--benchmark_enable_random_interleaving=true";
  static char kAggregates[] = "--benchmark_report_aggregates_only=true";
  args.insert(args.begin() + 1, {kReps, kInterleave, kAggregates});
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
