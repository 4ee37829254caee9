#!/usr/bin/python3
"""The keyverifier binary against real parts on loopback: dnsmasq (SRV and A
records), HTTPS Matrix servers with their own test CAs (keys signed by the
Python reference, signedjson), a notary, the SQLite store across a kill -9,
and a real Prometheus scraping the metrics. Called through the generated
Python gRPC stubs.

Usage: federation_test.py KEYVERIFIER HTTPS_SERVER_PY STUB_DIR
"""
import concurrent.futures
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BINARY, HTTPS_SCRIPT = sys.argv[1:3]
# The first generated stub file: protos/keyverifier/v1/service_pb2.py.
harness.use_service_stubs(sys.argv[3])
import grpc  # noqa: E402
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402

NOW_MS = int(time.time() * 1000)
DAY_MS = 24 * 3600 * 1000

# Room version 10 redaction of an m.room.message: content is emptied.
KEEP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
        "signatures", "depth", "prev_events", "auth_events", "origin_server_ts",
        "origin", "membership", "prev_state"}


def redact_message(event):
    out = {k: v for k, v in event.items() if k in KEEP}
    out["content"] = {}
    return out


class World:
    """Everything the tests share, built once."""

    def __init__(self):
        self.origin = harness.MatrixKeys("origin.test")
        self.wk = harness.MatrixKeys("wk.test")
        self.offline = harness.MatrixKeys("offline.test")
        self.cold = harness.MatrixKeys("cold.test")
        self.notary = harness.MatrixKeys("notary.test", "n")
        until = NOW_MS + DAY_MS
        key_path = "/_matrix/key/v2/server"

        def route(body, **extra):
            r = {"status": 200, "body": json.dumps(body)}
            r.update(extra)
            return r
        # origin.test: found by SRV; its certificate is for origin.test only.
        self.origin_srv = harness.HttpsServer(HTTPS_SCRIPT, ["origin.test"], {
            key_path: route(self.origin.response(until))})
        # wk.test delegates to backend.test:PORT via .well-known.
        self.backend = harness.HttpsServer(HTTPS_SCRIPT, ["backend.test"], {
            key_path: route(self.wk.response(until))})
        self.well_known = harness.HttpsServer(HTTPS_SCRIPT, ["wk.test"], {
            "/.well-known/matrix/server":
                route({"m.server": "backend.test:%d" % self.backend.port})})
        # badcert.test presents a certificate for another name.
        self.badcert = harness.HttpsServer(HTTPS_SCRIPT, ["other.test"], {
            key_path: route(harness.MatrixKeys("badcert.test").response(until))})
        # cold.test answers slowly, so 1,000 concurrent lookups overlap.
        self.cold_srv = harness.HttpsServer(HTTPS_SCRIPT, ["cold.test"], {
            key_path: route(self.cold.response(until), delay_ms=1500)})
        # rotated.test starts with key a; the tests rotate it to b.
        self.rot_a = harness.MatrixKeys("rotated.test", "a")
        self.rot_b = harness.MatrixKeys("rotated.test", "b")
        self.rotated = harness.HttpsServer(HTTPS_SCRIPT, ["rotated.test"], {
            key_path: route(self.rot_a.response(until))})
        # Peers that serve something wrong, one way each.
        forged = harness.MatrixKeys("badsig.test").response(until)
        forged["valid_until_ts"] += 1  # after signing
        self.broken = harness.HttpsServer(HTTPS_SCRIPT, [
            "wrongname.test", "badsig.test", "garbage.test", "big.test", "slow.test"], {
            "wrongname.test" + key_path: route(harness.MatrixKeys("evil.test").response(until)),
            "badsig.test" + key_path: route(forged),
            "garbage.test" + key_path: {"status": 200, "body": "<html>not keys</html>"},
            "big.test" + key_path: {"status": 200, "body": " " * 300000},
            "slow.test" + key_path: route(harness.MatrixKeys("slow.test").response(until),
                                          delay_ms=5000)})
        # The notary, found by SRV like any server; it vouches for offline.test,
        # which has no DNS records at all, and for partial.test with an entry
        # whose origin signature is broken.
        notarised = harness.sign_json(self.offline.response(until), "notary.test",
                                      self.notary.key)
        partial = harness.MatrixKeys("partial.test").response(until)
        partial["valid_until_ts"] += 1
        partial = harness.sign_json(partial, "notary.test", self.notary.key)
        # A notary lying about liar.test: the entry is not signed with the
        # notary's pinned key.
        impostor = harness.MatrixKeys("notary.test", "n")
        lie = harness.sign_json(harness.MatrixKeys("liar.test").response(until), "notary.test",
                                impostor.key)
        answer = {"server_keys": [notarised, partial, lie]}
        self.notary_srv = harness.HttpsServer(HTTPS_SCRIPT, ["notary.test"], {
            "/_matrix/key/v2/query/offline.test": route(answer),
            "/_matrix/key/v2/query/partial.test": route(answer),
            "/_matrix/key/v2/query/liar.test": route(answer),
            "/_matrix/key/v2/query": route(answer)})

        self.dns, self.dns_port = harness.start_dnsmasq(
            "test",
            srv=[("_matrix-fed._tcp.origin.test", "target.origin.test", self.origin_srv.port),
                 ("_matrix-fed._tcp.badcert.test", "target.badcert.test", self.badcert.port),
                 ("_matrix-fed._tcp.cold.test", "target.cold.test", self.cold_srv.port),
                 ("_matrix-fed._tcp.notary.test", "target.notary.test", self.notary_srv.port),
                 ("_matrix-fed._tcp.rotated.test", "target.rotated.test", self.rotated.port)]
            + [("_matrix-fed._tcp.%s" % n, "target.broken.test", self.broken.port)
               for n in ("wrongname.test", "badsig.test", "garbage.test", "big.test",
                         "slow.test")]
            + [("_matrix-fed._tcp.down.test", "target.down.test", harness.free_port())],
            hosts=[("target.origin.test", "127.0.0.1"), ("target.badcert.test", "127.0.0.1"),
                   ("target.cold.test", "127.0.0.1"), ("wk.test", "127.0.0.1"),
                   ("target.rotated.test", "127.0.0.1"), ("target.broken.test", "127.0.0.1"),
                   ("target.down.test", "127.0.0.1"),
                   ("backend.test", "127.0.0.1"), ("target.notary.test", "127.0.0.1"),
                   ("internal.test", "10.9.9.9")])
        self.data_dir = harness.tmpdir("data")
        self.config = self.make_config()
        self.kv = harness.Keyverifier(BINARY, self.config, self.data_dir).start()

    def make_config(self, fetch_disabled=False, store=None):
        cas = [s.ca for s in (self.origin_srv, self.backend, self.well_known, self.badcert,
                              self.cold_srv, self.notary_srv, self.rotated, self.broken)]
        lines = [
            'dns { servers: "127.0.0.1:%d" timeout_ms: 1000 }' % self.dns_port,
            # The test servers live on loopback; everything else stays refused.
            'outbound { allowed: "127.0.0.0/8" }',
            'federation_tls { ca_mode: replace %s }' % " ".join('ca_files: "%s"' % c for c in cas),
            'fetch { %s well_known_port: %d request_timeout_ms: 10000'
            ' notaries { server_name: "notary.test" verify_keys { key: "%s" value: "%s" } } }' % (
                "disabled: true" if fetch_disabled else "", self.well_known.port,
                self.notary.key_id, self.notary.public_b64()),
        ]
        if store:
            lines.append(store)
        return "\n".join(lines) + "\n"

    def stub(self):
        channel = grpc.insecure_channel("127.0.0.1:%d" % self.kv.port)
        return service_pb2_grpc.KeyVerifierStub(channel)


WORLD = None


class FederationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global WORLD
        WORLD = World()
        cls.w = WORLD
        cls.stub = WORLD.stub()

    def keys(self, server, **kw):
        return self.stub.VerifyServerKeys(
            service_pb2.VerifyServerKeysRequest(server_name=server, **kw), timeout=30)

    def message_event(self, body="hello", keys=None, ts=None):
        keys = keys or self.w.origin
        server = keys.server_name
        event = {"type": "m.room.message", "room_id": "!room:%s" % server,
                 "sender": "@alice:%s" % server, "content": {"msgtype": "m.text", "body": body},
                 "depth": 5, "prev_events": [], "auth_events": [],
                 "origin_server_ts": ts if ts is not None else NOW_MS - 1000}
        return keys.sign_event(event, redact_message)

    def keys_error(self, server, timeout=30):
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.VerifyServerKeys(
                service_pb2.VerifyServerKeysRequest(server_name=server), timeout=timeout)
        return e.exception

    def verify(self, event):
        return self.stub.VerifyEventSignature(service_pb2.VerifyEventSignatureRequest(
            event_json=json.dumps(event).encode(), room_version="10"), timeout=30)

    def test_01_direct_fetch_through_srv_sends_the_server_name_not_the_target(self):
        r = self.keys("origin.test")
        self.assertEqual(r.source.kind, service_pb2.KeySource.ORIGIN)
        self.assertEqual([k.key_id for k in r.verify_keys], ["ed25519:a"])
        self.assertEqual(harness.unpadded(r.verify_keys[0].public_key), self.w.origin.public_b64())
        self.assertEqual(r.verify_keys[0].valid_until_ts, NOW_MS + DAY_MS)
        self.assertEqual(len(r.raw_json), 1)
        self.assertEqual(json.loads(r.raw_json[0])["server_name"], "origin.test")
        reqs = self.w.origin_srv.requests("/_matrix/key/v2/server")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0]["host"], "origin.test")
        self.assertEqual(reqs[0]["sni"], "origin.test")
        # Asked again: from the cache, no new request.
        self.assertEqual(self.keys("origin.test").source.kind, service_pb2.KeySource.CACHE)
        self.assertEqual(len(self.w.origin_srv.requests("/_matrix/key/v2/server")), 1)

    def test_02_events_verify_with_fetched_keys(self):
        good = self.message_event()
        v = self.verify(good)
        self.assertEqual(v.outcome, service_pb2.EventVerdict.VALID, v.message)
        self.assertTrue(v.event_id.startswith("$"))
        tampered = dict(good, content={"msgtype": "m.text", "body": "changed"})
        v = self.verify(tampered)
        self.assertEqual(v.outcome, service_pb2.EventVerdict.VALID_BUT_REDACTED, v.message)
        forged = dict(good, origin_server_ts=good["origin_server_ts"] + 1)
        v = self.verify(forged)
        self.assertEqual(v.outcome, service_pb2.EventVerdict.INVALID)
        self.assertEqual(v.reason, service_pb2.BAD_SIGNATURE)

    def test_03_well_known_delegation_uses_the_delegated_name(self):
        r = self.keys("wk.test")
        self.assertEqual(r.source.kind, service_pb2.KeySource.ORIGIN)
        self.assertEqual(len(self.w.well_known.requests("/.well-known/matrix/server")), 1)
        reqs = self.w.backend.requests("/_matrix/key/v2/server")
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0]["host"], "backend.test:%d" % self.w.backend.port)
        self.assertEqual(reqs[0]["sni"], "backend.test")

    def detail(self, error):
        """What the service logged of an error a caller got: the caller's
        message names an id and keeps addresses and transport particulars
        out; the log line under that id has them."""
        self.assertNotRegex(error.details(), r"\b\d{1,3}(\.\d{1,3}){3}\b")  # no IPv4 address
        self.assertNotIn("GET https://", error.details())
        self.assertRegex(error.details(), r"error id [0-9a-f]{16}$")
        line = harness.error_detail(self.w.kv.log_text(), error.details())
        self.assertIsNotNone(line, error.details())
        return line

    def test_04_certificate_for_another_name_is_refused(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.keys("badcert.test")
        self.assertIn(e.exception.code(), (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND))
        self.assertIn("hostname_mismatch", self.detail(e.exception))
        self.assertEqual(self.w.badcert.requests(), [])  # no request went out
        c = self.stub.CheckCertificate(service_pb2.CheckCertificateRequest(
            server_name="badcert.test", connect=True), timeout=30)
        self.assertFalse(c.valid)
        self.assertEqual(c.checked_name, "badcert.test")
        self.assertTrue(any(r.startswith("hostname_mismatch") for r in c.reasons), c.reasons)
        self.assertIn("other.test", list(c.chain[0].names))
        c = self.stub.CheckCertificate(service_pb2.CheckCertificateRequest(
            server_name="origin.test", connect=True), timeout=30)
        self.assertTrue(c.valid, c.reasons)
        self.assertEqual(c.endpoint, "127.0.0.1:%d" % self.w.origin_srv.port)

    def test_05_internal_addresses_are_never_contacted(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.keys("internal.test:8448")
        self.assertIn("10.9.9.9 is in denied network 10.0.0.0/8", self.detail(e.exception))

    def test_06_notary_answers_for_a_server_without_dns(self):
        r = self.keys("offline.test")
        self.assertEqual(r.source.kind, service_pb2.KeySource.NOTARY)
        self.assertEqual(r.source.notary, "notary.test")
        self.assertEqual(harness.unpadded(r.verify_keys[0].public_key), self.w.offline.public_b64())

    def test_06b_a_notary_entry_that_does_not_verify_is_refused(self):
        # partial.test: the origin's signature in the notary's entry is broken;
        # liar.test: signed by a key that is not the pinned notary key.
        for server, why in (("partial.test", "rejected"), ("liar.test", "rejected")):
            e = self.keys_error(server)
            self.assertIn(server, e.details())
            self.assertIn(why, self.detail(e))
        # The good entry of the same answer still counts.
        self.assertIn(self.keys("offline.test").source.kind,
                      (service_pb2.KeySource.NOTARY, service_pb2.KeySource.CACHE))

    def test_06c_peers_that_serve_something_wrong(self):
        cases = {
            "wrongname.test": "evil.test",       # keys of another server
            "badsig.test": "ed25519:a",          # the self-signature does not verify
            "garbage.test": "invalid JSON",
            "big.test": "larger than",
            "down.test": "Failed to connect",
        }
        for server, says in cases.items():
            e = self.keys_error(server)
            self.assertIn(e.code(), (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND),
                          (server, e.details()))
            self.assertIn(says, self.detail(e), server)
        e = self.keys_error("slow.test", timeout=1)
        self.assertEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_06d_key_rotation_keeps_old_events_verifiable(self):
        old_event = self.message_event("before rotation", keys=self.w.rot_a)
        v = self.verify(old_event)
        self.assertEqual(v.outcome, service_pb2.EventVerdict.VALID, v.message)
        # The server rotates: b is current, a is old since now.
        rotated_at = int(time.time() * 1000)
        self.w.rotated.set_routes({"/_matrix/key/v2/server": {"status": 200, "body": json.dumps(
            self.w.rot_b.response(NOW_MS + 2 * DAY_MS, old=self.w.rot_a.old_entry(rotated_at)))}})
        new_event = self.message_event("after rotation", keys=self.w.rot_b,
                                       ts=rotated_at + 1000)
        v = self.verify(new_event)  # unknown key id: fetched again
        self.assertEqual(v.outcome, service_pb2.EventVerdict.VALID, v.message)
        r = self.keys("rotated.test")
        self.assertEqual([k.key_id for k in r.verify_keys], ["ed25519:b"])
        self.assertEqual([(k.key_id, k.expired_ts) for k in r.old_verify_keys],
                         [("ed25519:a", rotated_at)])
        # Events from before the rotation still verify with the old key...
        v = self.verify(old_event)
        self.assertEqual(v.outcome, service_pb2.EventVerdict.VALID, v.message)
        # ...but a key cannot sign after it expired.
        late = self.message_event("signed late", keys=self.w.rot_a, ts=rotated_at + 5000)
        v = self.verify(late)
        self.assertEqual(v.outcome, service_pb2.EventVerdict.INVALID)
        self.assertEqual(v.reason, service_pb2.KEY_NOT_VALID, v.message)

    def test_06e_x_matrix_request_from_a_fetched_server(self):
        body = {"pdus": [], "edus": []}
        request = {"method": "PUT", "uri": "/_matrix/federation/v1/send/1",
                   "origin": "origin.test", "destination": "us.test", "content": body}
        signed = harness.sign_json(request, "origin.test", self.w.origin.key)
        sig = signed["signatures"]["origin.test"][self.w.origin.key_id]
        header = 'X-Matrix origin="origin.test",destination="us.test",key="%s",sig="%s"' % (
            self.w.origin.key_id, sig)
        def auth(h, destination="us.test"):
            return self.stub.VerifyRequestAuth(service_pb2.VerifyRequestAuthRequest(
                method="PUT", uri="/_matrix/federation/v1/send/1", destination=destination,
                body=json.dumps(body).encode(), authorization=[h]), timeout=30)
        r = auth(header)
        self.assertTrue(r.authenticated, r.message)
        self.assertEqual(r.origin, "origin.test")
        r = auth(header.replace("us.test", "them.test"), destination="them.test")
        self.assertFalse(r.authenticated)

    def test_06f_batch_mixing_servers(self):
        events = [self.message_event("one"), self.message_event("two", keys=self.w.wk),
                  self.message_event("three", keys=self.w.offline)]
        forged = dict(self.message_event("four"))
        forged["origin_server_ts"] += 1
        events.append(forged)
        r = self.stub.VerifyEvents(service_pb2.VerifyEventsRequest(events=[
            service_pb2.VerifyEventSignatureRequest(event_json=json.dumps(e).encode(),
                                                    room_version="10") for e in events]),
            timeout=30)
        outcomes = [x.verdict.outcome for x in r.results]
        self.assertEqual(outcomes, [service_pb2.EventVerdict.VALID] * 3
                         + [service_pb2.EventVerdict.INVALID])

    def test_07_thousand_concurrent_cold_lookups_make_one_fetch(self):
        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            futures = [self.stub.VerifyServerKeys.future(
                service_pb2.VerifyServerKeysRequest(server_name="cold.test"), timeout=60)
                for _ in range(1000)]
            results = [f.result() for f in futures]
        self.assertTrue(all(r.verify_keys[0].key_id == "ed25519:a" for r in results))
        self.assertEqual(len(self.w.cold_srv.requests("/_matrix/key/v2/server")), 1)

    def test_08_keys_survive_kill_9_and_answer_without_fetching(self):
        self.keys("origin.test")
        self.w.kv.kill9()
        # Restart on the same data directory with fetching off: only the store
        # can answer.
        self.w.kv = harness.Keyverifier(BINARY, self.w.make_config(fetch_disabled=True),
                                        self.w.data_dir).start()
        type(self).stub = self.w.stub()
        r = self.keys("origin.test")
        self.assertEqual(r.source.kind, service_pb2.KeySource.CACHE)
        self.assertEqual(harness.unpadded(r.verify_keys[0].public_key), self.w.origin.public_b64())
        v = self.verify(self.message_event("after restart"))
        self.assertEqual(v.outcome, service_pb2.EventVerdict.VALID, v.message)
        self.assertEqual(self.keys("offline.test").source.kind, service_pb2.KeySource.CACHE)

    def test_09_prometheus_scrapes_the_service(self):
        metrics = self.w.kv.metrics()
        self.assertIn("keyverifier_key_cache_lookups_total", metrics)
        prom = harness.Prometheus("127.0.0.1:%d" % self.w.kv.metrics_port)
        up = harness.wait_for(lambda: [r for r in (prom.query('up{job="keyverifier"}') or [])
                                       if r["value"][1] == "1"], "Prometheus to scrape", 60)
        self.assertEqual(up[0]["metric"]["instance"], "127.0.0.1:%d" % self.w.kv.metrics_port)
        rpcs = harness.wait_for(
            lambda: prom.query('sum(keyverifier_rpcs_total{method=~".*VerifyServerKeys"})'),
            "the RPC counter in Prometheus", 30)
        self.assertGreaterEqual(float(rpcs[0]["value"][1]), 1)

    def test_10_sigterm_drains_and_exits_cleanly(self):
        self.assertEqual(self.w.kv.terminate(), 0)
        self.assertIn('"msg":"stopped"', self.w.kv.log_text())

    def test_11_postgres_shared_by_two_service_processes(self):
        pg = harness.Postgres()
        store = 'store { kind: postgres postgres: "%s" }' % pg.conninfo()
        fetcher = harness.Keyverifier(BINARY, self.w.make_config(store=store),
                                      harness.tmpdir("data-a")).start()
        reader = harness.Keyverifier(BINARY, self.w.make_config(fetch_disabled=True, store=store),
                                     harness.tmpdir("data-b")).start()
        stub_a = service_pb2_grpc.KeyVerifierStub(
            grpc.insecure_channel("127.0.0.1:%d" % fetcher.port))
        stub_b = service_pb2_grpc.KeyVerifierStub(
            grpc.insecure_channel("127.0.0.1:%d" % reader.port))
        req = service_pb2.VerifyServerKeysRequest(server_name="wk.test")
        self.assertEqual(stub_a.VerifyServerKeys(req, timeout=30).source.kind,
                         service_pb2.KeySource.ORIGIN)
        # The second process never fetches: it finds what the first stored.
        r = stub_b.VerifyServerKeys(req, timeout=30)
        self.assertEqual(r.source.kind, service_pb2.KeySource.CACHE)
        self.assertEqual(harness.unpadded(r.verify_keys[0].public_key), self.w.wk.public_b64())
        self.assertIn("store postgres", reader.log_text())
        self.assertEqual(fetcher.terminate(), 0)
        self.assertEqual(reader.terminate(), 0)


if __name__ == "__main__":
    sys.exit(harness.run_tests(FederationTest, "federation_test"))
