// Runs a fuzz target as a regression test, without libFuzzer: every file of
// the target's seed corpus (the directory given as the first argument), then
// a fixed number of inputs mutated from them by a seeded mutator, so every
// run feeds the same inputs. A crash, a sanitizer report or a failed
// invariant (fuzz_check.h) fails the test and names the input.
//
// Arguments: CORPUS_DIR [ITERATIONS] (mutated inputs, default 20000).
// Environment: FUZZ_ITERATIONS overrides ITERATIONS, FUZZ_SEED (default 1)
// picks another sequence, FUZZ_TIME_LIMIT_S is a safety stop for slow or
// loaded machines (default 6; reaching it is reported and does not fail the
// test).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <dirent.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/mutator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace keyverifier::fuzz {
namespace {

std::string corpus_dir;         // NOLINT: set once by main
uint64_t default_iterations = 20000;

struct Input {
  std::string name;
  std::string bytes;
};

std::vector<Input> ReadCorpus(const std::string& dir) {
  std::vector<Input> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    std::ifstream f(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    out.push_back({name, std::move(bytes)});
  }
  closedir(d);
  // readdir's order is the file system's: sort, so the mutator sees the
  // same corpus in the same order everywhere.
  std::sort(out.begin(), out.end(),
            [](const Input& a, const Input& b) { return a.name < b.name; });
  return out;
}

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  uint64_t n = 0;
  return v != nullptr && absl::SimpleAtoi(v, &n) ? n : fallback;
}

void RunInput(const std::string& name, const std::string& bytes) {
  // A copy of exactly `size` bytes, so reading past the end is an ASan report.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  const uint8_t* data = copy.empty() ? nullptr : copy.data();
  SetCurrentInput(name.c_str(), data, copy.size());
  LLVMFuzzerTestOneInput(data, copy.size());
  SetCurrentInput(nullptr, nullptr, 0);
}

TEST(FuzzRegression, EverySeed) {
  const std::vector<Input> corpus = ReadCorpus(corpus_dir);
  ASSERT_FALSE(corpus.empty()) << "no seed inputs in " << corpus_dir;
  for (const Input& input : corpus) RunInput(input.name, input.bytes);
  RunInput("<empty input>", "");
}

TEST(FuzzRegression, MutatedSeeds) {
  const std::vector<Input> corpus = ReadCorpus(corpus_dir);
  ASSERT_FALSE(corpus.empty()) << "no seed inputs in " << corpus_dir;
  std::vector<std::string> seeds;
  for (const Input& input : corpus) seeds.push_back(input.bytes);

  const uint64_t iterations = EnvNumber("FUZZ_ITERATIONS", default_iterations);
  const uint64_t seed = EnvNumber("FUZZ_SEED", 1);
  const auto limit = std::chrono::seconds(EnvNumber("FUZZ_TIME_LIMIT_S", 6));
  const auto start = std::chrono::steady_clock::now();
  Mutator mutator(seed, seeds);
  uint64_t done = 0;
  for (; done < iterations; ++done) {
    if ((done & 63) == 0 && std::chrono::steady_clock::now() - start > limit) break;
    const std::string input = mutator.Next();
    RunInput(absl::StrCat("mutation ", done, " (FUZZ_SEED=", seed, ")"), input);
  }
  if (done < iterations) {
    std::printf("stopped at the time limit of %llu s\n",
                static_cast<unsigned long long>(limit.count()));
  }
  std::printf("%llu of %llu mutated inputs in %.2f s\n",
              static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(iterations),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  EXPECT_GT(done, 0u);
}

}  // namespace
}  // namespace keyverifier::fuzz

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  keyverifier::fuzz::corpus_dir = argv[1];
  if (argc >= 3 && !absl::SimpleAtoi(argv[2], &keyverifier::fuzz::default_iterations)) {
    std::fprintf(stderr, "bad iteration count %s\n", argv[2]);
    return 2;
  }
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  return RUN_ALL_TESTS();
}
