"""cc_grpc_proto: C++ (and gRPC) code from .proto files with the system protoc.

Bazel 4's native proto rules need @com_google_protobuf, which the offline build
does not have; this runs Debian's `protoc` and `grpc_cpp_plugin` in a genrule
and wraps the output in a cc_library. Sources are given relative to the
package, which is also the import root: `protos/keyverifier/v1/x.proto` in
package //protos is imported as "keyverifier/v1/x.proto" and its header is
included as "keyverifier/v1/x.pb.h".
"""

def cc_grpc_proto(name, srcs, grpc = True, deps = [], visibility = None):
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    grpc_flags = ""
    if grpc:
        grpc_flags = ("--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin " +
                      "--grpc_out=$(RULEDIR)")
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = outs,
        cmd = ("protoc -I%s --cpp_out=$(RULEDIR) %s $(SRCS)" %
               (native.package_name() or ".", grpc_flags)),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        deps = deps + ["@system//:grpc"],
        visibility = visibility,
    )

def py_grpc_proto(name, srcs, visibility = None):
    """Python messages and gRPC stubs (for clients in a second language).

    Produces <base>_pb2.py and <base>_pb2_grpc.py under the package's output
    directory, importable with that directory on PYTHONPATH."""
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + "_pb2.py", base + "_pb2_grpc.py"]
    native.genrule(
        name = name,
        srcs = srcs,
        outs = outs,
        cmd = ("protoc -I%s --python_out=$(RULEDIR) " +
               "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin " +
               "--grpc_out=$(RULEDIR) $(SRCS)") % (native.package_name() or "."),
        visibility = visibility,
    )
