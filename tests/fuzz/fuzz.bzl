"""fuzz_target: a libFuzzer entry point (LLVMFuzzerTestOneInput) built three ways.

For `name` it defines
  name + "_lib"   the target's code;
  name            a binary: with --config=fuzz a libFuzzer fuzzer (clang,
                  -fsanitize=fuzzer), otherwise a reproducer that runs the
                  files given on its command line;
  name + "_test"  the regression test: every file of corpus/<name>/, then
                  `iterations` seeded mutations of them (regression_test.cc);
                  size them to keep the test within a few seconds under
                  --config=asan.
"""

def fuzz_target(name, srcs, deps = [], data = [], iterations = 20000, size = "small"):
    native.cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs,
        data = data,
        deps = deps + [":fuzz_check"],
        alwayslink = True,
    )
    native.cc_binary(
        name = name,
        testonly = True,
        deps = [":" + name + "_lib"] + select({
            "//:fuzz": [],
            "//conditions:default": [":standalone_main"],
        }),
        linkopts = select({
            "//:fuzz": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.cc_test(
        name = name + "_test",
        size = size,
        args = ["tests/fuzz/corpus/" + name, str(iterations)],
        data = native.glob(["corpus/" + name + "/*"]),
        deps = [
            ":" + name + "_lib",
            ":regression_driver",
        ],
    )
