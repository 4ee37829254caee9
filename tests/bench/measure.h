// What the benchmarks read off the process and the machine, and the median
// they judge ratios by.
#ifndef KEYVERIFIER_TESTS_BENCH_MEASURE_H_
#define KEYVERIFIER_TESTS_BENCH_MEASURE_H_

#include <string>
#include <vector>

namespace keyverifier::bench {

// Resident memory of this process (KiB), -1 if unknown.
long RssKb();
// Heap bytes malloc has handed out and not had back (KiB): what the
// program holds, whatever the allocator keeps for reuse.
long HeapInUseKb();
// Threads of this process.
int ThreadCount();
// The CPU's model name, as /proc/cpuinfo gives it.
std::string CpuModel();
// The middle value (the upper one of an even count); 0 when empty.
double Median(std::vector<double> v);

}  // namespace keyverifier::bench

#endif  // KEYVERIFIER_TESTS_BENCH_MEASURE_H_
