// A small seeded mutator for the fuzz regression tests: the same seed and
// seeds give the same inputs on every machine (std::mt19937_64 is fully
// specified; no std distributions, whose results are not).
#ifndef KEYVERIFIER_TESTS_FUZZ_MUTATOR_H_
#define KEYVERIFIER_TESTS_FUZZ_MUTATOR_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace keyverifier::fuzz {

class Mutator {
 public:
  // `seeds` must not be empty.
  Mutator(uint64_t seed, std::vector<std::string> seeds);

  // One of the seeds (or an earlier output) with one to four edits: bit
  // flips, bytes set to values parsers care about, byte insertion and
  // deletion, a range duplicated, a token inserted (JSON syntax, escapes,
  // number edge cases, UTF-8 edge cases, header syntax), a splice with
  // another seed, truncation. At most kMaxSize bytes.
  std::string Next();

  static constexpr size_t kMaxSize = 64 * 1024;

 private:
  uint64_t Below(uint64_t n);  // uniform enough in [0, n), n > 0
  void Edit(std::string* s);

  std::mt19937_64 rng_;
  std::vector<std::string> seeds_;
  std::vector<std::string> recent_;  // earlier outputs, mutated further
};

}  // namespace keyverifier::fuzz

#endif  // KEYVERIFIER_TESTS_FUZZ_MUTATOR_H_
