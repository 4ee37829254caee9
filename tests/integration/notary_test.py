#!/usr/bin/python3
"""The keyverifier binary acting as a notary, end to end on loopback: the
simulated federation (tests/testing/sim_federation.py: server names through a
real dnsmasq, HTTPS with a test CA) as the origins; keyverifier instances
serving /_matrix/key/v2/query over HTTPS; other instances pinning them as
notaries (the real notary fetcher against the real notary endpoint); and a
Python client that checks every entry's origin and notary signatures with
python3-signedjson, as Synapse's perspectives fetcher does. Counts are taken
at the simulated origins.

Usage: notary_test.py KEYVERIFIER SIM_FEDERATION_PY STUB_DIR
"""
import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from signedjson.key import decode_signing_key_base64, decode_verify_key_bytes, get_verify_key  # noqa: E402
from signedjson.sign import SignatureVerifyException, verify_signed_json  # noqa: E402

BINARY, SIM_SCRIPT = sys.argv[1:3]
harness.use_service_stubs(sys.argv[3])
import grpc  # noqa: E402
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402

SERVERS = 12
DEAD = 11  # s11.sim.test accepts and never answers
SIM = None


def name(i):
    return "s%d.sim.test" % i


def sim_public_key(server):
    """The simulated server's verify key (its seed is SHA-256 of its name)."""
    seed = hashlib.sha256(server.encode()).digest()
    return decode_signing_key_base64("ed25519", "sim", harness.unpadded(seed)).verify_key


class Notary:
    """A keyverifier instance serving the notary endpoints over HTTPS under
    the name kvnotary-TAG.sim.test:PORT (the simulated federation's wildcard
    certificate covers it)."""

    def __init__(self, tag):
        self.port = harness.free_port()
        self.host = "kvnotary-%s.sim.test" % tag
        self.server_name = "%s:%d" % (self.host, self.port)
        self.seed = hashlib.sha256(("notary " + tag).encode()).digest()
        self.key_version = "n" + tag
        self.verify_key = get_verify_key(decode_signing_key_base64(
            "ed25519", self.key_version, harness.unpadded(self.seed)))
        key_file = os.path.join(harness.tmpdir("notary-key"), "signing.key")
        with open(key_file, "w") as f:
            f.write("ed25519 %s %s\n" % (self.key_version, harness.unpadded(self.seed)))
        top = "\n".join([
            'notary_listen: "127.0.0.1:%d"' % self.port,
            'notary { server_name: "%s" signing_key_file: "%s" cert_file: "%s" key_file: "%s"'
            ' requests_per_second: 1000 burst: 1000 }' % (
                self.server_name, key_file, os.path.join(SIM.dir, "server.pem"),
                os.path.join(SIM.dir, "server.key")),
        ])
        self.kv = harness.Keyverifier(BINARY, config("direct_only", top=top),
                                      harness.tmpdir("data")).start()
        harness.wait_for(lambda: "notary on" in self.kv.log_text(), "the notary listener")

    def pinned(self):
        """The fetch.notaries entry that pins this notary."""
        return ('notaries { server_name: "%s" verify_keys { key: "ed25519:%s" value: "%s" } }'
                % (self.server_name, self.key_version,
                   harness.unpadded(self.verify_key.encode())))

    def dns_override(self):
        return 'hosts { host: "%s" addresses: "127.0.0.1" }' % self.host

    def request(self, method, path, body=None):
        """(status, parsed body) of one HTTPS request, the certificate checked
        against the test CA for the notary's name."""
        ctx = ssl.create_default_context(cafile=SIM.ca)
        host, port = self.host, self.port

        class Connection(http.client.HTTPSConnection):
            def connect(self):
                raw = socket.create_connection(("127.0.0.1", port), timeout=30)
                self.sock = ctx.wrap_socket(raw, server_hostname=host)

        conn = Connection(host, port, context=ctx, timeout=30)
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        text = r.read()
        conn.close()
        return r.status, json.loads(text)

    def stop(self):
        self.kv.terminate()


def config(order, extra="", top="", dns_extra=""):
    return top + "\n" + "\n".join([
        'dns { servers: "127.0.0.1:%s" timeout_ms: 1000 %s }' % (SIM.ports["dns"], dns_extra),
        'outbound { allowed: "127.0.0.0/8" }',
        'federation_tls { ca_mode: replace ca_files: "%s" }' % SIM.ca,
        'fetch { order: %s connect_timeout_ms: 1000 request_timeout_ms: 3000 budget_ms: 6000'
        ' well_known_port: %d %s }' % (order, harness.free_port(), extra),
        'refresher { disabled: true }',
    ]) + "\n"


def client(notaries, quorum=1):
    """A keyverifier instance that fetches through `notaries` only when they
    answer (notaries first), and its gRPC stub."""
    kv = harness.Keyverifier(
        BINARY,
        config("notaries_first", "quorum: %d " % quorum + " ".join(n.pinned() for n in notaries),
               dns_extra=" ".join(n.dns_override() for n in notaries)),
        harness.tmpdir("data")).start()
    return kv, service_pb2_grpc.KeyVerifierStub(grpc.insecure_channel("127.0.0.1:%d" % kv.port))


class NotaryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global SIM
        SIM = harness.SimFederation(SIM_SCRIPT, SERVERS, str(DEAD))
        cls.a = Notary("a")
        cls.b = Notary("b")

    def check_entry(self, entry, notary):
        """What a perspectives client does with one entry: the origin's own
        signature with the key it lists (which must be the origin's real
        key) and the notary's signature with the pinned key."""
        server = entry["server_name"]
        listed = entry["verify_keys"]["ed25519:sim"]["key"]
        self.assertEqual(listed, harness.unpadded(sim_public_key(server).encode()))
        origin_key = decode_verify_key_bytes("ed25519:sim", sim_public_key(server).encode())
        verify_signed_json(entry, server, origin_key)
        verify_signed_json(entry, notary.server_name, notary.verify_key)
        # Another key does not pass for the notary's.
        with self.assertRaises(SignatureVerifyException):
            verify_signed_json(entry, notary.server_name, self.b.verify_key
                               if notary is self.a else self.a.verify_key)

    def test_01_a_signedjson_client_checks_every_entry_of_a_batch_query(self):
        now = int(time.time() * 1000)
        before = SIM.stats()
        status, body = self.a.request("POST", "/_matrix/key/v2/query", {"server_keys": {
            name(1): {},
            name(2): {"ed25519:sim": {"minimum_valid_until_ts": now}},
            name(DEAD): {},
        }})
        self.assertEqual(status, 200, body)
        entries = body["server_keys"]
        # The dead server has nothing to serve and is left out.
        self.assertEqual(sorted(e["server_name"] for e in entries), [name(1), name(2)])
        for e in entries:
            self.check_entry(e, self.a)
            self.assertGreater(e["valid_until_ts"], now)
        after = SIM.stats()
        for i in (1, 2):
            self.assertEqual(SIM.key_requests(name(i), after) - SIM.key_requests(name(i), before), 1)

        # GET for one server, with a key id and a minimum the cache reaches:
        # answered from the cache, no new request at the origin.
        status, body = self.a.request(
            "GET", "/_matrix/key/v2/query/%s/ed25519%%3Asim?minimum_valid_until_ts=%d"
            % (name(1), now))
        self.assertEqual(status, 200, body)
        self.assertEqual([e["server_name"] for e in body["server_keys"]], [name(1)])
        self.check_entry(body["server_keys"][0], self.a)
        self.assertEqual(SIM.key_requests(name(1)) - SIM.key_requests(name(1), before), 1)

        metrics = self.a.kv.metrics()
        self.assertGreaterEqual(float(harness.metric(
            metrics, 'keyverifier_notary_servers_total{outcome="fetched"}')), 2)
        self.assertGreaterEqual(float(harness.metric(
            metrics, 'keyverifier_notary_servers_total{outcome="cached"}')), 1)
        self.assertGreaterEqual(float(harness.metric(
            metrics, 'keyverifier_notary_requests_total{code="200",endpoint="query"}')), 2)

    def test_02_bad_queries_get_matrix_errors_naming_the_problem(self):
        cases = [
            (b"{not json", 400, "M_NOT_JSON", "not JSON"),
            ({"server_keys": {"bad name!": {}}}, 400, "M_INVALID_PARAM", "bad name!"),
            ({"server_keys": {name(i): {} for i in range(101)}}, 413, "M_TOO_LARGE",
             "at most 100"),
            ({"nothing": 1}, 400, "M_BAD_JSON", "server_keys is missing"),
        ]
        for body, status, errcode, says in cases:
            got_status, got = self.a.request("POST", "/_matrix/key/v2/query", body)
            self.assertEqual(got_status, status, got)
            self.assertEqual(got["errcode"], errcode)
            self.assertIn(says, got["error"])
        got_status, got = self.a.request("GET", "/_matrix/client/versions")
        self.assertEqual((got_status, got["errcode"]), (404, "M_UNRECOGNIZED"))
        # Nothing of that reached an origin, and the notary still answers.
        status, body = self.a.request("GET", "/_matrix/key/v2/query/%s" % name(1))
        self.assertEqual(status, 200)
        self.assertEqual(len(body["server_keys"]), 1)

    def test_03_the_real_fetcher_gets_keys_through_a_pinned_keyverifier_notary(self):
        kv, stub = client([self.a])
        try:
            before = SIM.key_requests(name(4))
            r = stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(server_name=name(4)),
                                      timeout=20)
            self.assertEqual(r.server_name, name(4))
            self.assertEqual(r.source.kind, service_pb2.KeySource.NOTARY)
            self.assertEqual(r.source.notary, self.a.server_name)
            self.assertEqual([k.key_id for k in r.verify_keys], ["ed25519:sim"])
            self.assertEqual(r.verify_keys[0].public_key, sim_public_key(name(4)).encode())
            # One request at the origin: the notary's; the client never went there.
            self.assertEqual(SIM.key_requests(name(4)) - before, 1)
        finally:
            kv.terminate()

    def test_04_a_quorum_of_two_keyverifier_notaries(self):
        fetched = 'keyverifier_notary_servers_total{outcome="fetched"}'
        served_before = {n: float(harness.metric(n.kv.metrics(), fetched)) for n in (self.a, self.b)}
        kv, stub = client([self.a, self.b], quorum=2)
        try:
            before = SIM.key_requests(name(5))
            r = stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(server_name=name(5)),
                                      timeout=20)
            self.assertEqual(r.verify_keys[0].public_key, sim_public_key(name(5)).encode())
            # A quorum asks every source at once: each notary asked the
            # origin once, and so did the client itself.
            self.assertEqual(SIM.key_requests(name(5)) - before, 3)
            # Both notaries answered (the quorum may have been reached before
            # the slower one finished).
            for n in (self.a, self.b):
                harness.wait_for(lambda: float(harness.metric(n.kv.metrics(), fetched))
                                 == served_before[n] + 1,
                                 "%s to answer" % n.server_name, timeout=10)
        finally:
            kv.terminate()

    def test_05_when_the_origin_goes_down_the_last_answer_is_still_served(self):
        status, body = self.a.request("GET", "/_matrix/key/v2/query/%s" % name(6))
        self.assertEqual((status, len(body["server_keys"])), (200, 1))
        SIM.control("/config", {"dead": [6]})
        try:
            # A minimum beyond what the origin ever gave makes the notary ask
            # it again; it cannot be reached, and the last answer is served.
            far = int(time.time() * 1000) + 365 * 86400000
            status, body = self.a.request(
                "GET", "/_matrix/key/v2/query/%s?minimum_valid_until_ts=%d" % (name(6), far))
            self.assertEqual(status, 200, body)
            self.assertEqual(len(body["server_keys"]), 1)
            self.check_entry(body["server_keys"][0], self.a)
            self.assertGreaterEqual(float(harness.metric(
                self.a.kv.metrics(), 'keyverifier_notary_servers_total{outcome="stale"}')), 1)
        finally:
            SIM.control("/config", {"dead": []})


if __name__ == "__main__":
    sys.exit(harness.run_tests(NotaryTest, "notary_test"))
