// Event verification speed: the full path (parse -> content hash -> redact ->
// canonicalise -> reference hash -> ed25519 verify) against a bare libsodium
// crypto_sign_verify_detached of the same signed bytes, in the same run.
// The JSON and hash work should cost under ~10% of the verify: the target is
// full-path throughput >= 0.90x the bare verify's. Prints the ratio at the end.
//
//   bazel run -c opt //tests/bench:event_verify_benchmark
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"
#include "tests/bench/fixture.h"

namespace keyverifier::core {
namespace {

using bench::Fixture;
using bench::FullPathValid;
using bench::GetFixture;
using bench::kNow;

void BM_BareSodiumVerify(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    bool ok = bench::BareVerify(f);
    benchmark::DoNotOptimize(ok);
    if (!ok) state.SkipWithError("bare verify failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BareSodiumVerify);

void BM_FullEventVerify(benchmark::State& state) {
  const Fixture& f = GetFixture();
  const KeyLookup keys = bench::FixtureKeys(f);
  for (auto _ : state) {
    bool valid = FullPathValid(f, keys);
    benchmark::DoNotOptimize(valid);
    if (!valid) state.SkipWithError("full path did not give valid");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullEventVerify);

// The verdict alone on an event prepared once: the verify plus what the
// verdict adds around it (key lookup, signature decoding, the result).
void BM_VerifyPreparedOnly(benchmark::State& state) {
  const Fixture& f = GetFixture();
  const KeyLookup keys = bench::FixtureKeys(f);
  absl::StatusOr<PreparedEvent> p = PrepareEvent(f.event_json, *f.room);
  for (auto _ : state) {
    EventVerdict v = VerifyPreparedEvent(*p, keys);
    if (v.outcome != EventVerdict::Outcome::kValid) {
      state.SkipWithError("verdict was not valid");
    }
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyPreparedOnly);

// The non-crypto part alone, to see where the time goes.
void BM_PrepareOnly(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    absl::StatusOr<PreparedEvent> p = PrepareEvent(f.event_json, *f.room);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrepareOnly);

// The steps of PrepareEvent on their own, to see where the time goes.
void BM_ParseOnly(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    absl::StatusOr<Value> v = ParseJson(f.event_json);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_ParseOnly);

void BM_CanonicalEncodeOnly(benchmark::State& state) {
  const Fixture& f = GetFixture();
  Value v = *ParseJson(f.event_json);
  for (auto _ : state) {
    std::string out;
    AppendCanonicalJsonWithout(v, {"hashes", "signatures", "unsigned"},
                               NumberPolicy::kStrict, &out)
        .IgnoreError();
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_CanonicalEncodeOnly);

void BM_Sha256Only(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    Sha256Digest d = Sha256(f.event_json);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_Sha256Only);

// Remembers each benchmark's time per iteration to print the ratio.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    // With repetitions, the median of each benchmark; otherwise its one run.
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Iteration && r.iterations > 0 &&
          !ns_.count(r.run_name.function_name)) {
        ns_[r.run_name.function_name] = r.GetAdjustedRealTime();
      } else if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median") {
        ns_[r.run_name.function_name] = r.GetAdjustedRealTime();
      }
    }
  }
  double ns(const std::string& name) const {
    auto it = ns_.find(name);
    return it == ns_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> ns_;
};

// The ratio from paired rounds: a few milliseconds of bare verifies, then as
// many events through the full path (the order alternating), and the median
// of the rounds' ratios. The machine's speed drifts from one second to the
// next; within a pair it hardly changes, so the pairs cancel the drift that
// separate repetitions of each benchmark are exposed to.
double PairedRatio(int rounds, int events_per_round) {
  const Fixture& f = GetFixture();
  const KeyLookup keys = bench::FixtureKeys(f);
  int failures = 0;
  auto bare = [&] {
    for (int i = 0; i < events_per_round; ++i) failures += !bench::BareVerify(f);
  };
  auto full = [&] {
    for (int i = 0; i < events_per_round; ++i) failures += !FullPathValid(f, keys);
  };
  auto seconds = [](auto&& run) {
    auto start = std::chrono::steady_clock::now();
    run();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
        .count();
  };
  std::vector<double> ratios;
  for (int r = 0; r < rounds; ++r) {
    double bare_s, full_s;
    if (r % 2 == 0) {
      bare_s = seconds(bare);
      full_s = seconds(full);
    } else {
      full_s = seconds(full);
      bare_s = seconds(bare);
    }
    ratios.push_back(bare_s / full_s);  // throughput full / bare
  }
  if (failures != 0) return 0;
  std::sort(ratios.begin(), ratios.end());
  return ratios[ratios.size() / 2];
}

}  // namespace
}  // namespace keyverifier::core

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  std::cout << "event size: " << keyverifier::bench::GetFixture().event_json.size()
            << " bytes, signed bytes: "
            << keyverifier::bench::GetFixture().signed_bytes.size() << "\n";
  // Repetitions in random order spread the machine's noise evenly over the
  // benchmarks being compared; flags given on the command line win.
  std::vector<char*> args(argv, argv + argc);
  static char kReps[] = "--benchmark_repetitions=7";
  static char kInterleave[] = "--benchmark_enable_random_interleaving=true";
  static char kAggregates[] = "--benchmark_report_aggregates_only=true";
  args.insert(args.begin() + 1, {kReps, kInterleave, kAggregates});
  int args_count = static_cast<int>(args.size());
  benchmark::Initialize(&args_count, args.data());
  keyverifier::core::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  double bare = reporter.ns("BM_BareSodiumVerify");
  double full = reporter.ns("BM_FullEventVerify");
  double prep = reporter.ns("BM_PrepareOnly");
  if (bare > 0 && full > 0) {
    std::printf(
        "full path: %.0f ns/event, bare verify: %.0f ns, prepare: %.0f ns\n"
        "throughput ratio full/bare from the medians above = %.3f\n",
        full, bare, prep, bare / full);
  }
  constexpr int kRounds = 101, kEventsPerRound = 200;
  const double paired = keyverifier::core::PairedRatio(kRounds, kEventsPerRound);
  if (paired == 0) {
    std::printf("paired rounds: a verdict was not valid\n");
    return 1;
  }
  std::printf(
      "throughput ratio full/bare, median of %d paired rounds of %d events = "
      "%.3f (target >= 0.90)\n",
      kRounds, kEventsPerRound, paired);
  benchmark::Shutdown();
  return 0;
}
