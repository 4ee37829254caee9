"""Asks a keyverifier's standard gRPC health service for its status.

Usage: health_check.py HOST:PORT   -> prints SERVING / NOT_SERVING / ... and
exits 0 if SERVING. Builds the tiny health messages by hand so only grpcio is
needed (HealthCheckRequest{} is empty; the response's field 1 is the status).
"""
import sys

import grpc

STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def main(target):
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        reply = check(b"", timeout=5)
    status = 0
    if len(reply) >= 2 and reply[0] == 0x08:
        status = reply[1]
    print(STATUS.get(status, str(status)))
    return 0 if status == 1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
