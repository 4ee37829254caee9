#!/usr/bin/python3
"""The cold path of the keyverifier binary on a simulated federation on
loopback (tests/testing/sim_federation.py: many server names through a real
dnsmasq, one multi-tenant HTTPS server with a test CA, dead servers that
accept TCP and never answer, a notary answering batch POSTs). Counts are
taken at the fake servers. Called through the generated Python gRPC stubs.

Usage: cold_path_test.py KEYVERIFIER SIM_FEDERATION_PY STUB_DIR
"""
import concurrent.futures
import hashlib
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from signedjson.key import decode_signing_key_base64  # noqa: E402

BINARY, SIM_SCRIPT = sys.argv[1:3]
harness.use_service_stubs(sys.argv[3])
import grpc  # noqa: E402
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402

NOW_MS = int(time.time() * 1000)
CONNECT_S = 2.0  # connect_timeout_ms below: what one dead server costs
SERVERS = 2000
# Dead servers: a few among the first 200 (the batches), and 1000-1999 for
# the shutdown drill.
DEAD_SMALL = [3, 7, 11, 15, 19, 23, 27, 31, 43, 47, 51, 55, 59, 63, 67, 71]
KEEP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
        "signatures", "depth", "prev_events", "auth_events", "origin_server_ts",
        "origin", "membership", "prev_state"}


def name(i):
    return "s%d.sim.test" % i


def sim_keys(server):
    """The simulated server's deterministic signing key (seed: SHA-256 of its name)."""
    keys = harness.MatrixKeys(server, "sim")
    seed = hashlib.sha256(server.encode()).digest()
    keys.key = decode_signing_key_base64("ed25519", "sim", harness.unpadded(seed))
    return keys


def redact_message(event):
    out = {k: v for k, v in event.items() if k in KEEP}
    out["content"] = {}
    return out


def event_request(server, body):
    event = {"type": "m.room.message", "room_id": "!room:%s" % server,
             "sender": "@alice:%s" % server, "content": {"msgtype": "m.text", "body": body},
             "depth": 5, "prev_events": [], "auth_events": [], "origin_server_ts": NOW_MS - 1000}
    sim_keys(server).sign_event(event, redact_message)
    return service_pb2.VerifyEventSignatureRequest(event_json=json.dumps(event).encode(),
                                                   room_version="10")


class Sim(harness.SimFederation):
    def __init__(self):
        dead = ",".join(str(i) for i in DEAD_SMALL) + ",1000-1999"
        super().__init__(SIM_SCRIPT, SERVERS, dead)
        self.notary_key = sim_keys("notary.sim.test").public_b64()


SIM = None


def config(order="direct_only", extra="", top=""):
    return top + "\n" + "\n".join([
        'dns { servers: "127.0.0.1:%s" timeout_ms: 1000 }' % SIM.ports["dns"],
        'outbound { allowed: "127.0.0.0/8" }',
        'federation_tls { ca_mode: replace ca_files: "%s" }' % SIM.ca,
        'fetch { order: %s connect_timeout_ms: %d request_timeout_ms: 4000 budget_ms: 8000'
        ' well_known_port: %d %s'
        ' notaries { server_name: "notary.sim.test" verify_keys { key: "ed25519:sim"'
        ' value: "%s" } } }' % (order, int(CONNECT_S * 1000), harness.free_port(), extra,
                                SIM.notary_key),
        'refresher { disabled: true }',
    ]) + "\n"


def start(order="direct_only", extra="", top=""):
    kv = harness.Keyverifier(BINARY, config(order, extra, top), harness.tmpdir("data")).start()
    channel = grpc.insecure_channel("127.0.0.1:%d" % kv.port)
    return kv, service_pb2_grpc.KeyVerifierStub(channel)


def batch(servers, per_server=2):
    req = service_pb2.VerifyEventsRequest()
    for i in servers:
        for j in range(per_server):
            req.events.append(event_request(name(i), "event %d" % j))
    return req


class ColdPathTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global SIM
        SIM = Sim()
        cls.kv, cls.stub = start(extra="max_connections: 64 max_connections_per_host: 2")

    def test_01_a_batch_with_dead_servers_settles_within_one_fetch_budget(self):
        # 80 events from 40 cold servers, 8 of them dead: the dead ones cost
        # one connect timeout together, not one each (serially: 16 s).
        start_t = time.monotonic()
        resp = self.stub.VerifyEvents(batch(range(40)), timeout=60)
        took = time.monotonic() - start_t
        dead = {i for i in DEAD_SMALL if i < 40}
        self.assertEqual(len(resp.results), 80)
        for k, result in enumerate(resp.results):
            server = k // 2
            if server in dead:
                self.assertTrue(result.HasField("error"), result)
                self.assertIn(name(server), result.error.message)
            else:
                self.assertEqual(result.verdict.outcome, service_pb2.EventVerdict.VALID, result)
        self.assertLess(took, 2 * CONNECT_S + 2, "took %.1f s" % took)
        stats = SIM.stats()
        for i in range(40):
            if i not in dead:
                self.assertEqual(SIM.key_requests(name(i), stats), 1, name(i))

    def test_02_an_unrelated_cold_lookup_is_not_delayed_by_batches_on_dead_servers(self):
        pool = concurrent.futures.ThreadPoolExecutor(4)
        first = pool.submit(self.stub.VerifyEvents, batch(range(40, 80)), timeout=60)
        second = pool.submit(self.stub.VerifyEvents, batch(range(80, 120)), timeout=60)
        time.sleep(0.3)  # both batches now wait on their dead servers
        start_t = time.monotonic()
        r = self.stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
            server_name=name(150)), timeout=30)
        took = time.monotonic() - start_t
        self.assertEqual(r.source.kind, service_pb2.KeySource.ORIGIN)
        self.assertFalse(first.done(), "the batch did not wait on its dead servers")
        # Well under one dead server's connect timeout (2 s), which it would
        # wait for if it queued behind the batches.
        self.assertLess(took, 1.5, "took %.2f s" % took)
        self.assertEqual(len(first.result().results), 80)
        self.assertEqual(len(second.result().results), 80)

    def test_03_a_short_deadline_gives_up_and_the_fetch_still_answers_the_next_caller(self):
        SIM.control("/config", {"delays": {name(160): 1500}})
        try:
            with self.assertRaises(grpc.RpcError) as e:
                self.stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                    server_name=name(160)), timeout=0.3)
            self.assertEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            time.sleep(2.0)  # the fetch goes on and lands in the cache
            r = self.stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                server_name=name(160)), timeout=30)
            self.assertEqual(r.source.kind, service_pb2.KeySource.CACHE)
            self.assertEqual(len(r.verify_keys), 1)
            self.assertEqual(SIM.key_requests(name(160)), 1)
        finally:
            SIM.control("/config", {"delays": {}})

    def test_04_lookups_of_unknown_key_ids_inside_the_backoff_make_one_fetch(self):
        for key_id in ["ed25519:nope"] * 10 + ["ed25519:made_up%d" % i for i in range(10)]:
            r = self.stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                server_name=name(161), key_ids=[key_id]), timeout=30)
            self.assertEqual(len(r.verify_keys), 0)
        self.assertEqual(SIM.key_requests(name(161)), 1)

    def test_05_the_connection_caps_hold(self):
        # 64 connections in all: 150 cold servers answering after 500 ms.
        SIM.control("/config", {"delay_ms": 500})
        try:
            SIM.control("/reset", {})
            resp = self.stub.VerifyEvents(batch(range(200, 350), per_server=1), timeout=60)
            self.assertTrue(all(r.verdict.outcome == service_pb2.EventVerdict.VALID
                                for r in resp.results))
            stats = SIM.stats()
            # Requests being answered at once (a closed connection may be
            # counted open a moment after the client's next one opened).
            self.assertLessEqual(stats["peak_requests_in_flight"], 64)
            self.assertGreater(stats["peak_requests_in_flight"], 8)  # and they ran together
        finally:
            SIM.control("/config", {"delay_ms": 0})

    def test_06_notaries_first_one_post_carries_many_servers_and_the_per_host_cap_holds(self):
        kv, stub = start("notaries_first", "notary_batch_size: 100 max_connections_per_host: 2")
        try:
            SIM.control("/reset", {})
            resp = stub.VerifyEvents(batch(range(400, 460)), timeout=60)
            self.assertTrue(all(r.verdict.outcome == service_pb2.EventVerdict.VALID
                                for r in resp.results))
            stats = SIM.stats()
            self.assertEqual(stats["post_batch_sizes"], [60])
            self.assertEqual(sum(SIM.key_requests(name(i), stats) for i in range(400, 460)), 0)
        finally:
            kv.terminate()
        # Small batches: many POSTs to one notary, two connections at a time.
        kv, stub = start("notaries_first", "notary_batch_size: 5 max_connections_per_host: 2")
        try:
            SIM.control("/config", {"notary_delay_ms": 300})
            SIM.control("/reset", {})
            resp = stub.VerifyEvents(batch(range(500, 540)), timeout=60)
            self.assertTrue(all(r.verdict.outcome == service_pb2.EventVerdict.VALID
                                for r in resp.results))
            stats = SIM.stats()
            self.assertEqual(sorted(stats["post_batch_sizes"]), [5] * 8)
            self.assertLessEqual(stats["peak_connections_by_host"]["notary.sim.test"], 2)
        finally:
            SIM.control("/config", {"notary_delay_ms": 0})
            kv.terminate()

    def test_07_sigterm_with_a_thousand_hung_fetches_exits_within_the_grace(self):
        kv, stub = start(extra="max_connections: 256")
        futures = [stub.VerifyServerKeys.future(
            service_pb2.VerifyServerKeysRequest(server_name=name(i)), timeout=60)
            for i in range(1000, 2000)]
        # Single lookups have a quarter of the connections (64): those hang
        # at dead servers, the rest wait their turn.
        harness.wait_for(lambda: SIM.stats()["open_dead_connections"] >= 50 or None,
                         "fetches to hang at the dead servers")
        start_t = time.monotonic()
        kv.proc.send_signal(signal.SIGTERM)
        kv.proc.wait(timeout=30)
        took = time.monotonic() - start_t
        grace = 2.0  # harness.Keyverifier passes --grace_seconds 2
        self.assertEqual(kv.proc.returncode, 0, kv.log_text()[-2000:])
        print("exit %.2f s after SIGTERM with 1000 fetches hung" % took)
        self.assertLess(took, grace + 1.0, "exit took %.2f s\n%s" % (took, kv.log_text()[-3000:]))
        codes = {}
        for f in futures:
            try:
                f.result(timeout=10)
                codes["OK"] = codes.get("OK", 0) + 1
            except grpc.RpcError as e:  # answered with an error, never left hanging
                codes[e.code().name] = codes.get(e.code().name, 0) + 1
        self.assertEqual(sum(codes.values()), 1000)
        self.assertNotIn("OK", codes)
        self.assertNotIn("DEADLINE_EXCEEDED", codes, codes)

    def test_08_padded_responses_from_a_hostile_domain_stay_within_the_memory_bound(self):
        # Every name of the domain serves validly signed responses padded with
        # 200 old keys (~60 KiB in memory each); the keyring may keep 1 MiB.
        kv, stub = start(top="limits { keyring_memory_mb: 1 }")
        try:
            SIM.control("/config", {"pad_old_keys": 200})
            SIM.control("/reset", {})
            servers = range(600, 1000)
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(lambda i: stub.VerifyServerKeys(
                    service_pb2.VerifyServerKeysRequest(server_name=name(i)), timeout=60),
                    servers))
            self.assertTrue(all(len(a.old_verify_keys) == 200 for a in answers))
            metrics = kv.metrics()
            held = float(harness.metric(metrics, "keyverifier_keyring_memory_bytes"))
            kept = float(harness.metric(metrics, "keyverifier_keyring_servers"))
            print("keyring after 400 padded servers: %d servers, %.0f KiB" % (kept, held / 1024))
            self.assertLessEqual(held, 1 << 20)
            self.assertGreater(kept, 0)
            self.assertLess(kept, 400)
            # The first ones left memory, not the store: no new fetch.
            stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(server_name=name(600)),
                                  timeout=30)
            self.assertEqual(SIM.key_requests(name(600)), 1)
            # Past the keys-per-response limit: refused, saying why (in the log).
            SIM.control("/config", {"pad_old_keys": 300})
            with self.assertRaises(grpc.RpcError) as e:
                stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                    server_name=name(360)), timeout=30)
            self.assertIn("lists 301 keys (current and old); the limit is 256",
                          self.error_detail(kv, e.exception))
            # Legitimate servers keep working, and the service is up.
            SIM.control("/config", {"pad_old_keys": 0})
            r = stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(server_name=name(361)),
                                      timeout=30)
            self.assertEqual(len(r.verify_keys), 1)
            self.assertIsNone(kv.proc.poll())
        finally:
            SIM.control("/config", {"pad_old_keys": 0})
            kv.terminate()

    def error_detail(self, kv, error):
        line = harness.error_detail(kv.log_text(), error.details())
        self.assertIsNotNone(line, error.details())
        return line

    def test_09_hostile_peers_get_a_clear_status_and_change_nothing_else(self):
        kv, stub = start()
        data_dir = None
        try:
            def keys(i, **kw):
                return stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                    server_name=name(i), **kw), timeout=30)
            # valid_until_ts ten years ahead: trusted for 7 days from the fetch.
            SIM.control("/config", {"valid_for_ms": 10 * 365 * 86400000})
            r = keys(370)
            now = int(time.time() * 1000)
            self.assertGreater(r.verify_keys[0].valid_until_ts, now + 9 * 365 * 86400000)
            self.assertLessEqual(r.verify_keys[0].usable_until_ts, now + 7 * 86400000)
            self.assertGreater(r.verify_keys[0].usable_until_ts, now + 7 * 86400000 - 60000)
            SIM.control("/config", {"valid_for_ms": 86400000})
            # One byte a second: the request budget (4 s) ends it.
            SIM.control("/config", {"trickle": [371]})
            start_t = time.monotonic()
            with self.assertRaises(grpc.RpcError) as e:
                keys(371)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertLess(time.monotonic() - start_t, 12)
            # One key id, two keys in one response: refused, saying so.
            SIM.control("/config", {"two_bodies": [373]})
            with self.assertRaises(grpc.RpcError) as e:
                keys(373)
            self.assertIn("is given two different keys", self.error_detail(kv, e.exception))
            # Meanwhile others are served, and the service is up.
            self.assertEqual(len(keys(372).verify_keys), 1)
            self.assertIsNone(kv.proc.poll())
        finally:
            SIM.control("/config", {"trickle": [], "two_bodies": [], "valid_for_ms": 86400000})
            kv.terminate()

        # A notary that vouches for a key of its own under the server's key
        # id: believed (it is pinned) until the origin itself says otherwise;
        # then the origin's key replaces it (MSC4499), and that is reported.
        data_dir = harness.tmpdir("data")
        SIM.control("/config", {"notary_lies": [374]})
        kv = harness.Keyverifier(BINARY, config("notaries_first"), data_dir).start()
        try:
            stub = service_pb2_grpc.KeyVerifierStub(
                grpc.insecure_channel("127.0.0.1:%d" % kv.port))
            fake = stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                server_name=name(374)), timeout=30)
            self.assertEqual(fake.source.kind, service_pb2.KeySource.NOTARY)
        finally:
            SIM.control("/config", {"notary_lies": []})
            kv.terminate()
        kv = harness.Keyverifier(BINARY, config("direct_only"), data_dir).start()
        try:
            stub = service_pb2_grpc.KeyVerifierStub(
                grpc.insecure_channel("127.0.0.1:%d" % kv.port))
            real = stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                server_name=name(374),
                minimum_valid_until_ts=int(time.time() * 1000) + 2 * 86400000), timeout=30)
            self.assertEqual(harness.unpadded(real.verify_keys[0].public_key),
                             sim_keys(name(374)).public_b64())
            self.assertNotEqual(real.verify_keys[0].public_key, fake.verify_keys[0].public_key)
            self.assertIn('keyverifier_key_conflicts_total{outcome="rebound"} 1', kv.metrics())
        finally:
            kv.terminate()


if __name__ == "__main__":
    sys.exit(harness.run_tests(ColdPathTest, "cold_path_test"))
