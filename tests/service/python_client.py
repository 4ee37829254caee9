"""Calls a running keyverifier through the generated Python stubs (grpcio):
the API works from a second language.

Usage: python_client.py HOST:PORT STUB_DIR
The service must trust the Matrix spec's test key for server "domain"
(ed25519:1). Uses the spec's signed example event (room version 1).
"""
import json
import sys

import grpc

sys.path.insert(0, sys.argv[2])
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402

# Matrix spec appendices, "Event Signing", second example.
SPEC_EVENT = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {"domain": {"ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}},
    "unsigned": {"age_ts": 1000000},
}


def verify(stub, event, room_version="1"):
    return stub.VerifyEventSignature(
        service_pb2.VerifyEventSignatureRequest(
            event_json=json.dumps(event).encode(), room_version=room_version),
        timeout=10)


def main():
    failures = []

    def expect(name, cond, detail=""):
        print(("ok   " if cond else "FAIL ") + name + (f": {detail}" if not cond else ""))
        if not cond:
            failures.append(name)

    with grpc.insecure_channel(sys.argv[1]) as channel:
        stub = service_pb2_grpc.KeyVerifierStub(channel)

        v = verify(stub, SPEC_EVENT)
        expect("valid event", v.outcome == service_pb2.EventVerdict.VALID, v)
        expect("event id", v.event_id == "$0:domain", v.event_id)

        changed = json.loads(json.dumps(SPEC_EVENT))
        changed["content"]["body"] = "changed"
        v = verify(stub, changed)
        expect("redacted", v.outcome == service_pb2.EventVerdict.VALID_BUT_REDACTED, v)

        forged = json.loads(json.dumps(SPEC_EVENT))
        forged["origin_server_ts"] = 1000001
        v = verify(stub, forged)
        expect("bad signature", v.outcome == service_pb2.EventVerdict.INVALID
               and v.reason == service_pb2.BAD_SIGNATURE, v)

        stranger = json.loads(json.dumps(SPEC_EVENT))
        stranger["sender"] = "@u:stranger.example"
        stranger["signatures"] = {"stranger.example": {"ed25519:1": "AAAA"}}
        try:
            verify(stub, stranger)
            expect("unknown server is NOT_FOUND", False, "no error")
        except grpc.RpcError as e:
            expect("unknown server is NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND,
                   e.code())

        try:
            stub.VerifyEventSignature(service_pb2.VerifyEventSignatureRequest(
                event_json=b"{", room_version="1"), timeout=10)
            expect("bad JSON is INVALID_ARGUMENT", False, "no error")
        except grpc.RpcError as e:
            expect("bad JSON is INVALID_ARGUMENT",
                   e.code() == grpc.StatusCode.INVALID_ARGUMENT
                   and "event_json" in e.details(), e.details())

        batch = stub.VerifyEvents(service_pb2.VerifyEventsRequest(events=[
            service_pb2.VerifyEventSignatureRequest(
                event_json=json.dumps(SPEC_EVENT).encode(), room_version="1"),
            service_pb2.VerifyEventSignatureRequest(
                event_json=json.dumps(SPEC_EVENT).encode(), room_version="99"),
        ]), timeout=10)
        expect("batch size", len(batch.results) == 2, batch)
        expect("batch[0] valid",
               batch.results[0].verdict.outcome == service_pb2.EventVerdict.VALID)
        expect("batch[1] error",
               batch.results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0],
               batch.results[1])

        keys = stub.VerifyServerKeys(
            service_pb2.VerifyServerKeysRequest(server_name="domain"), timeout=10)
        expect("server keys", [k.key_id for k in keys.verify_keys] == ["ed25519:1"], keys)

    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
