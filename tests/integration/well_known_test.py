#!/usr/bin/python3
"""Hostile /.well-known/matrix/server, end to end: the keyverifier binary on
the simulated federation (tests/testing/sim_federation.py), whose servers
given --well-known have A records and answer .well-known with a valid
delegation, redirect loops and endless chains, redirects to names of
internal addresses and to an internal IP literal, an oversized body and a
slow one. Counts are taken at the sim.

The spec (server-server API, "Resolving server names", step 3-4): redirects
are followed, loops avoided; when the .well-known request errs or its answer
is invalid, the server is found through SRV and then port 8448. So each
hostile .well-known ends with the lookup succeeding through the server's SRV
record (the report of DiagnoseServer names what was wrong with .well-known),
while a valid delegation to an internal address is followed and refused
before connecting: UNAVAILABLE for a server with no known keys (the log says
the outbound filter refused the address), its last known keys for a server
that had some.

Usage: well_known_test.py KEYVERIFIER SIM_FEDERATION_PY STUB_DIR
"""
import concurrent.futures
import hashlib
import os
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

WELL_KNOWN = "/.well-known/matrix/server"
KEY_PATH = "/_matrix/key/v2/server"
MAX_REDIRECTS = 5  # the fetcher's limit (service/app: HttpsWellKnownFetcher::Options)
WELL_KNOWN_TIMEOUT_S = 2.0
# s0: no A record, no .well-known (the unrelated server); s1-s11 serve one.
UNRELATED = 0
DELEGATE, LOOP, CHAIN, ZERO, METADATA, PRIVATE, IP_LITERAL, OVERSIZED, SLOW = range(1, 10)
TURNS_HOSTILE, DELEGATES_INSIDE = 10, 11
COLD = 12  # not looked up before test_08
CROWDED_CHAIN = 13  # a chain many callers ask for at once
SIM = None


def name(i):
    return "s%d.sim.test" % i


def public_b64(server):
    seed = hashlib.sha256(server.encode()).digest()
    keys = harness.MatrixKeys(server, "sim")
    keys.key = decode_signing_key_base64("ed25519", "sim", harness.unpadded(seed))
    return keys.public_b64()


def config():
    return "\n".join([
        'dns { servers: "127.0.0.1:%s" timeout_ms: 1000 }' % SIM.ports["dns"],
        'outbound { allowed: "127.0.0.0/8" }',
        'federation_tls { ca_mode: replace ca_files: "%s" }' % SIM.ca,
        'fetch { order: direct_only connect_timeout_ms: 2000 request_timeout_ms: 4000'
        ' budget_ms: 8000 well_known_port: %s well_known_timeout_ms: %d }' % (
            SIM.ports["https"], int(WELL_KNOWN_TIMEOUT_S * 1000)),
        'refresher { disabled: true }',
    ]) + "\n"


def start(data_dir=None):
    kv = harness.Keyverifier(BINARY, config(), data_dir or harness.tmpdir("data")).start()
    return kv, service_pb2_grpc.KeyVerifierStub(
        grpc.insecure_channel("127.0.0.1:%d" % kv.port))


def requests(stats, host, path):
    return stats["requests"].get(host, {}).get(path, 0)


class WellKnownTest(unittest.TestCase):
    filter_held = False  # the loopback canary was refused: real internal addresses next

    @classmethod
    def setUpClass(cls):
        global SIM
        SIM = harness.SimFederation(SIM_SCRIPT, 14, well_known="1-11,13")
        SIM.control("/config", {"well_known": {
            DELEGATE: "delegate", LOOP: "loop", CHAIN: "chain", ZERO: "redirect_zero",
            METADATA: "redirect_metadata", PRIVATE: "redirect_private",
            IP_LITERAL: "redirect_ip", OVERSIZED: "oversized", SLOW: "slow",
            TURNS_HOSTILE: "delegate", DELEGATES_INSIDE: "delegate_internal",
            CROWDED_CHAIN: "chain"}})
        cls.kv, cls.stub = start()

    def keys(self, i, stub=None, **kw):
        return (stub or self.stub).VerifyServerKeys(
            service_pb2.VerifyServerKeysRequest(server_name=name(i), **kw), timeout=30)

    def diagnose(self, i):
        return self.stub.DiagnoseServer(
            service_pb2.DiagnoseServerRequest(server_name=name(i)), timeout=30)

    def assert_own_key(self, response, i):
        self.assertEqual(len(response.verify_keys), 1, response)
        self.assertEqual(harness.unpadded(response.verify_keys[0].public_key), public_b64(name(i)))

    def assert_fell_back_to_srv(self, i, stats):
        """The key request went to the server's own name (its SRV record),
        once; the service is up and the unrelated server is served."""
        self.assertEqual(requests(stats, name(i), KEY_PATH), 1, stats["requests"])
        self.assertIsNone(self.kv.proc.poll())
        self.assert_own_key(self.keys(UNRELATED), UNRELATED)

    def lookup(self, i):
        """Looks `i` up cold, with counts of just that lookup."""
        SIM.control("/reset", {})
        start_t = time.monotonic()
        r = self.keys(i)
        took = time.monotonic() - start_t
        stats = SIM.stats()
        self.assertEqual(r.source.kind, service_pb2.KeySource.ORIGIN)
        self.assert_own_key(r, i)
        return stats, took

    def well_known_error(self, i):
        """What DiagnoseServer says about the server's .well-known; it also
        reports the route the lookup takes."""
        report = self.diagnose(i)
        wk = report.discovery.well_known
        self.assertTrue(wk.attempted)
        self.assertEqual(wk.delegated_server, "")
        self.assertIn("SRV _matrix-fed._tcp.%s" % name(i), report.discovery.route)
        return wk

    def test_01_a_valid_delegation_is_followed(self):
        stats, _ = self.lookup(DELEGATE)
        self.assertEqual(requests(stats, name(DELEGATE), WELL_KNOWN), 1)
        self.assertEqual(requests(stats, "m-s%d.sim.test" % DELEGATE, KEY_PATH), 1)
        self.assertEqual(requests(stats, name(DELEGATE), KEY_PATH), 0)
        report = self.diagnose(DELEGATE)
        self.assertEqual(report.discovery.well_known.delegated_server,
                         "m-s%d.sim.test:%s" % (DELEGATE, SIM.ports["https"]))

    def test_02_a_redirect_loop_is_left_after_one_round(self):
        stats, _ = self.lookup(LOOP)
        # A -> B -> A: each asked once, A's URL not again.
        self.assertEqual(requests(stats, name(LOOP), WELL_KNOWN), 1)
        self.assertEqual(requests(stats, "loop-s%d.sim.test" % LOOP, WELL_KNOWN), 1)
        self.assert_fell_back_to_srv(LOOP, stats)
        wk = self.well_known_error(LOOP)
        self.assertIn("redirect loop at https://%s:%s%s" % (name(LOOP), SIM.ports["https"],
                                                          WELL_KNOWN), wk.error)

    def test_03_an_endless_redirect_chain_stops_at_the_limit(self):
        stats, _ = self.lookup(CHAIN)
        self.assertEqual(requests(stats, name(CHAIN), WELL_KNOWN), 1)
        for hop in range(1, MAX_REDIRECTS + 1):
            self.assertEqual(requests(stats, name(CHAIN), "/hop/%d" % hop), 1, hop)
        self.assertEqual(requests(stats, name(CHAIN), "/hop/%d" % (MAX_REDIRECTS + 1)), 0)
        # Nothing but those and the key request.
        self.assertEqual(sum(stats["requests"][name(CHAIN)].values()), MAX_REDIRECTS + 2)
        self.assert_fell_back_to_srv(CHAIN, stats)
        wk = self.well_known_error(CHAIN)
        self.assertIn("more than %d redirects" % MAX_REDIRECTS, wk.error)

    def test_03b_many_callers_at_once_follow_the_chain_once(self):
        SIM.control("/reset", {})
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: self.keys(CROWDED_CHAIN), range(32)))
        for r in answers:
            self.assert_own_key(r, CROWDED_CHAIN)
        stats = SIM.stats()
        self.assertEqual(requests(stats, name(CROWDED_CHAIN), WELL_KNOWN), 1)
        self.assertEqual(sum(requests(stats, name(CROWDED_CHAIN), "/hop/%d" % hop)
                             for hop in range(1, 100)), MAX_REDIRECTS)
        self.assert_fell_back_to_srv(CROWDED_CHAIN, stats)

    def test_04_a_redirect_to_a_refused_address_on_loopback_never_connects(self):
        # zero.sim.test is 0.0.0.0: refused by the filter, but a connection
        # to it would land here (on loopback), so the sim can see one.
        stats, _ = self.lookup(ZERO)
        self.assertEqual(requests(stats, name(ZERO), WELL_KNOWN), 1)
        self.assertNotIn("zero.sim.test", stats["requests"])
        self.assertNotIn("zero.sim.test", stats["peak_connections_by_host"])
        # Connections are never reused: the .well-known one and the key
        # request's, and no third.
        self.assertEqual(stats["accepted_https_connections"], 2, stats)
        self.assert_fell_back_to_srv(ZERO, stats)
        wk = self.well_known_error(ZERO)
        self.assertIn("not connecting to 0.0.0.0:%s" % SIM.ports["https"], wk.error)
        self.assertNotIn("zero.sim.test", SIM.stats()["requests"])
        type(self).filter_held = True

    def redirect_to_internal(self, i, address):
        if not type(self).filter_held:
            self.fail("the loopback canary was not refused: not trying internal addresses")
        stats, _ = self.lookup(i)
        self.assertEqual(requests(stats, name(i), WELL_KNOWN), 1)
        self.assertEqual(stats["accepted_https_connections"], 2, stats)
        self.assert_fell_back_to_srv(i, stats)
        wk = self.well_known_error(i)
        # Refused by the outbound filter, before connecting.
        self.assertIn("not connecting to %s:%s" % (address, SIM.ports["https"]), wk.error)
        self.assertIn("denied network", wk.error)
        return wk

    def test_05_a_redirect_to_a_name_of_an_internal_address_is_refused(self):
        self.redirect_to_internal(METADATA, "169.254.169.254")
        self.redirect_to_internal(PRIVATE, "10.0.0.1")

    def test_06_a_redirect_to_an_internal_ip_literal_is_refused(self):
        self.redirect_to_internal(IP_LITERAL, "10.0.0.1")

    def test_07_an_oversized_body_is_cut_off(self):
        stats, _ = self.lookup(OVERSIZED)
        self.assertEqual(requests(stats, name(OVERSIZED), WELL_KNOWN), 1)
        # Its delegation (had it been read) is not followed.
        self.assertNotIn("m-s%d.sim.test" % OVERSIZED, stats["requests"])
        self.assert_fell_back_to_srv(OVERSIZED, stats)
        wk = self.well_known_error(OVERSIZED)
        self.assertIn("response larger than 65536 bytes", wk.error)

    def test_08_a_slow_body_costs_the_well_known_budget_and_holds_up_no_one_else(self):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            SIM.control("/reset", {})
            slow_start = time.monotonic()
            slow = pool.submit(self.keys, SLOW)
            harness.wait_for(lambda: requests(SIM.stats(), name(SLOW), WELL_KNOWN),
                             "the slow .well-known request")
            # Meanwhile a cold lookup of another server is answered at once.
            start_t = time.monotonic()
            self.assert_own_key(self.keys(COLD), COLD)
            self.assertLess(time.monotonic() - start_t, 1.0)
            self.assertFalse(slow.done())
            r = slow.result()
        took = time.monotonic() - slow_start
        self.assert_own_key(r, SLOW)
        self.assertEqual(r.source.kind, service_pb2.KeySource.ORIGIN)
        self.assertLess(took, WELL_KNOWN_TIMEOUT_S + 2)
        stats = SIM.stats()
        self.assertEqual(requests(stats, name(SLOW), WELL_KNOWN), 1)
        self.assertNotIn("m-s%d.sim.test" % SLOW, stats["requests"])
        self.assert_fell_back_to_srv(SLOW, stats)

    def test_09_hostile_answers_are_cached_not_asked_again(self):
        # The failures above are backed off: looking up again (the keys are
        # cached, so ask for a validity they cannot have) fetches the keys
        # again but not the .well-known.
        SIM.control("/reset", {})
        far = int(time.time() * 1000) + 30 * 86400000
        for i in (LOOP, CHAIN, ZERO, METADATA, OVERSIZED):
            self.keys(i, minimum_valid_until_ts=far)
        stats = SIM.stats()
        for i in (LOOP, CHAIN, ZERO, METADATA, OVERSIZED):
            self.assertEqual(requests(stats, name(i), WELL_KNOWN), 0, i)
            self.assertEqual(requests(stats, name(i), KEY_PATH), 1, i)

    def test_10_a_delegation_to_an_internal_address_is_refused_with_a_clear_status(self):
        SIM.control("/reset", {})
        with self.assertRaises(grpc.RpcError) as e:
            self.keys(DELEGATES_INSIDE)
        detail = harness.error_detail(self.kv.log_text(), e.exception.details())
        self.assertIsNotNone(detail, e.exception.details())
        # No source gave keys (UNAVAILABLE, as for any server with none
        # known); the log says why: the delegated name's address was refused.
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE, detail)
        self.assertIn(name(DELEGATES_INSIDE), e.exception.details())
        self.assertIn("every address is refused by the outbound address filter "
                      "(169.254.169.254 is in denied network 169.254.0.0/16)", detail)
        stats = SIM.stats()
        self.assertEqual(requests(stats, name(DELEGATES_INSIDE), WELL_KNOWN), 1)
        self.assertEqual(requests(stats, name(DELEGATES_INSIDE), KEY_PATH), 0)
        self.assertNotIn("metadata.sim.test", stats["requests"])
        self.assertIsNone(self.kv.proc.poll())
        self.assert_own_key(self.keys(UNRELATED), UNRELATED)

    def test_11_known_keys_stay_known_after_the_server_turns_hostile(self):
        data_dir = harness.tmpdir("data")
        kv, stub = start(data_dir)
        try:
            first = self.keys(TURNS_HOSTILE, stub)
            self.assert_own_key(first, TURNS_HOSTILE)
            self.assertEqual(first.source.kind, service_pb2.KeySource.ORIGIN)
        finally:
            kv.terminate()
        # Now its .well-known delegates to an internal address. A new process
        # (no .well-known cached) over the same store.
        SIM.control("/config", {"well_known": {
            DELEGATE: "delegate", LOOP: "loop", CHAIN: "chain", ZERO: "redirect_zero",
            METADATA: "redirect_metadata", PRIVATE: "redirect_private",
            IP_LITERAL: "redirect_ip", OVERSIZED: "oversized", SLOW: "slow",
            TURNS_HOSTILE: "delegate_internal", DELEGATES_INSIDE: "delegate_internal"}})
        kv, stub = start(data_dir)
        try:
            SIM.control("/reset", {})
            # Asking for more than is known makes it fetch, and fail: the
            # known keys are served.
            far = int(time.time() * 1000) + 30 * 86400000
            again = self.keys(TURNS_HOSTILE, stub, minimum_valid_until_ts=far)
            self.assertEqual(again.verify_keys[0].public_key, first.verify_keys[0].public_key)
            stats = SIM.stats()
            self.assertEqual(requests(stats, name(TURNS_HOSTILE), WELL_KNOWN), 1)
            self.assertEqual(sum(requests(stats, h, KEY_PATH) for h in stats["requests"]), 0)
            r = self.keys(TURNS_HOSTILE, stub)
            self.assertEqual(r.source.kind, service_pb2.KeySource.CACHE)
            self.assertEqual(r.verify_keys[0].public_key, first.verify_keys[0].public_key)
            self.assertIsNone(kv.proc.poll())
        finally:
            kv.terminate()


if __name__ == "__main__":
    sys.exit(harness.run_tests(WellKnownTest, "well_known_test"))
