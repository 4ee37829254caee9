#include "tests/fuzz/mutator.h"

#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace keyverifier::fuzz {
namespace {

std::vector<std::string> Outputs(uint64_t seed, int n) {
  Mutator m(seed, {"{\"a\":[1,2,3]}", "X-Matrix origin=a,key=b,sig=c"});
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(m.Next());
  return out;
}

TEST(MutatorTest, SameSeedSameInputs) { EXPECT_EQ(Outputs(7, 500), Outputs(7, 500)); }

TEST(MutatorTest, OtherSeedOtherInputs) { EXPECT_NE(Outputs(7, 50), Outputs(8, 50)); }

TEST(MutatorTest, InputsVaryAndStayBounded) {
  const std::vector<std::string> inputs = Outputs(1, 2000);
  const std::set<std::string> distinct(inputs.begin(), inputs.end());
  EXPECT_GT(distinct.size(), 1500u);
  for (const std::string& s : inputs) EXPECT_LE(s.size(), Mutator::kMaxSize);
}

TEST(MutatorTest, EdgesStayInBoundsOnTinySeeds) {
  // An empty and a one-byte seed: every edit must cope with them.
  Mutator m(3, {"", "x"});
  for (int i = 0; i < 5000; ++i) EXPECT_LE(m.Next().size(), Mutator::kMaxSize);
}

}  // namespace
}  // namespace keyverifier::fuzz
