// How the stack pointer's offset within a 4 KiB page changes the speed of
// libsodium's ed25519 verify (see Ed25519Verify in service/core/crypto.h).
//
// Verifies the fixture's signed bytes with the stack at every 16-byte offset
// of a page, in shuffled order, several rounds, and prints the median time
// per offset relative to the median over all offsets: the slow offsets, and
// where kEd25519VerifyStackOffset (what the service uses) and the bare
// libsodium call of the other benchmarks' baseline stand.
//
//   bazel run -c opt //tests/bench:verify_stack_benchmark [-- --rounds N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "service/core/crypto.h"
#include "tests/bench/fixture.h"

namespace keyverifier::core {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kStep = 16;
constexpr int kVerifiesPerSample = 100;

template <typename F>
double MicrosPerVerify(F verify) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kVerifiesPerSample; ++i) {
    if (!verify()) {
      std::fprintf(stderr, "verify failed\n");
      std::exit(1);
    }
  }
  const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
  return took.count() / kVerifiesPerSample;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Run(int rounds) {
  const bench::Fixture& f = bench::GetFixture();
  const Ed25519PublicKey& key = f.keys[0].public_key;
  constexpr size_t kOffsets = kPage / kStep;
  std::vector<std::vector<double>> samples(kOffsets);
  std::vector<double> bare;
  std::vector<size_t> order(kOffsets);
  for (size_t i = 0; i < kOffsets; ++i) order[i] = i;
  std::mt19937 rng(1);
  for (int r = 0; r < rounds; ++r) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t n = 0; n < kOffsets; ++n) {
      const size_t i = order[n];
      samples[i].push_back(MicrosPerVerify(
          [&] { return Ed25519VerifyAtStackOffset(key, f.signed_bytes, f.signature, i * kStep); }));
      if (n % 16 == 0) bare.push_back(MicrosPerVerify([&] { return bench::BareVerify(f); }));
    }
  }
  std::vector<double> medians(kOffsets);
  for (size_t i = 0; i < kOffsets; ++i) medians[i] = Median(samples[i]);
  const double typical = Median(medians);
  std::printf("ed25519 verify, %d rounds of %d verifies at each of %zu stack offsets\n", rounds,
              kVerifiesPerSample, kOffsets);
  std::printf("median over all offsets: %.2f us\n", typical);
  std::vector<size_t> slow;
  for (size_t i = 0; i < kOffsets; ++i) {
    if (medians[i] > 1.05 * typical) slow.push_back(i);
  }
  std::printf("offsets more than 5%% slower: %zu\n", slow.size());
  for (size_t i : slow) {
    std::printf("  offset %4zu: %.2f us (%.2fx)\n", i * kStep, medians[i], medians[i] / typical);
  }
  const size_t chosen = kEd25519VerifyStackOffset / kStep;
  size_t distance = kPage;
  for (size_t i : slow) {
    const size_t d = (i > chosen ? i - chosen : chosen - i) * kStep;
    distance = std::min({distance, d, kPage - d});
  }
  std::printf("service's offset %zu: %.2f us (%.2fx); nearest slow offset %zu bytes away\n",
              kEd25519VerifyStackOffset, medians[chosen], medians[chosen] / typical, distance);
  std::printf("bare libsodium call (the benchmarks' baseline): %.2f us (%.2fx)\n", Median(bare),
              Median(bare) / typical);
  const bool chosen_slow = std::find(slow.begin(), slow.end(), chosen) != slow.end();
  if (chosen_slow) {
    std::printf("the service's offset is a slow one: change kEd25519VerifyStackOffset\n");
  }
  return chosen_slow ? 1 : 0;
}

}  // namespace
}  // namespace keyverifier::core

int main(int argc, char** argv) {
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  return keyverifier::core::Run(rounds);
}
