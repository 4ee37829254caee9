"""Calls keyverifier over TLS with a given client certificate (or none) and
reports what happened: OK, or the gRPC status code name.

Usage: tls_client.py HOST:PORT STUB_DIR CA.pem [CLIENT.pem CLIENT.key]
"""
import sys

import grpc

sys.path.insert(0, sys.argv[2])
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402


def main():
    target, _, ca = sys.argv[1:4]
    key = cert = None
    if len(sys.argv) > 5:
        cert = open(sys.argv[4], "rb").read()
        key = open(sys.argv[5], "rb").read()
    creds = grpc.ssl_channel_credentials(open(ca, "rb").read(), key, cert)
    # The server certificate is for "keyverifier.test"; connect by address.
    options = [("grpc.ssl_target_name_override", "keyverifier.test")]
    with grpc.secure_channel(target, creds, options) as channel:
        stub = service_pb2_grpc.KeyVerifierStub(channel)
        try:
            stub.VerifyServerKeys(
                service_pb2.VerifyServerKeysRequest(server_name="domain"), timeout=5)
            print("OK")
        except grpc.RpcError as e:
            print(e.code().name)


if __name__ == "__main__":
    main()
