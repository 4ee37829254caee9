// main() for a fuzz target built without libFuzzer: runs the target once on
// each file named on the command line (a directory: on each file in it), as
// libFuzzer does when given files. For reproducing a crash in the normal or
// sanitizer build: bazel run --config=asan //tests/fuzz:json_fuzzer -- FILE
// Arguments starting with '-' (libFuzzer's flags) are ignored.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

int RunFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                             std::istreambuf_iterator<char>());
  std::fprintf(stderr, "running %s (%zu bytes)\n", path.c_str(), bytes.size());
  keyverifier::fuzz::SetCurrentInput(path.c_str(), bytes.data(), bytes.size());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  int failures = 0;
  int ran = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.empty() || arg[0] == '-') continue;
    struct stat st;
    if (stat(arg.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      DIR* d = opendir(arg.c_str());
      while (dirent* e = d != nullptr ? readdir(d) : nullptr) {
        const std::string path = arg + "/" + e->d_name;
        struct stat fst;
        if (stat(path.c_str(), &fst) == 0 && S_ISREG(fst.st_mode)) {
          failures += RunFile(path);
          ++ran;
        }
      }
      if (d != nullptr) closedir(d);
    } else {
      failures += RunFile(arg);
      ++ran;
    }
  }
  std::fprintf(stderr, "ran %d inputs\n", ran);
  return failures == 0 ? 0 : 1;
}
