"""sim_test: an integration test of the service binary on the simulated
federation (tests/testing/sim_federation.py).

The test script gets: the keyverifier binary, the simulator script, then
the locations of `extra` (in order), then the generated Python gRPC stubs.
Outside the sandbox: dnsmasq changes user and group.
"""

def sim_test(name, extra = [], size = "medium"):
    native.sh_test(
        name = name,
        size = size,
        srcs = [name + ".py"],
        args = [
            "$(location //service:keyverifier)",
            "$(location //tests/testing:sim_federation.py)",
        ] + ["$(location %s)" % label for label in extra] + [
            "$(locations //protos:service_py_grpc)",
        ],
        data = [
            "harness.py",
            "//protos:service_py_grpc",
            "//service:keyverifier",
            "//tests/testing:sim_federation.py",
            "//tests/testing:sim_federation_script",
        ] + extra,
        tags = ["no-sandbox"],
    )
