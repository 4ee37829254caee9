#!/usr/bin/python3
"""Three keyverifier processes sharing one PostgreSQL behave like one
service: each server is fetched once however many lookups reach however
many replicas, a replica killed (-9) while holding a fetch lease is replaced
once the lease expires, and the three refreshers refresh each due server
once. Real parts on loopback: PostgreSQL, the simulated federation (server
names through dnsmasq, HTTPS with a test CA), the gRPC API through the
generated Python stubs. Counts are taken at the simulated origins.

Usage: replicas_test.py KEYVERIFIER SIM_FEDERATION_PY STUB_DIR
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BINARY, SIM_SCRIPT = sys.argv[1:3]
harness.use_service_stubs(sys.argv[3])
import grpc  # noqa: E402
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402

SERVERS = 1100
REFRESHED = range(100, 1100)  # the refresher drill's servers
LEASE_MS = 15000
BUDGET_MS = 5000


def name(i):
    return "s%d.sim.test" % i


class ReplicasTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.Postgres()
        cls.sim = harness.SimFederation(SIM_SCRIPT, SERVERS)
        cls.config = "\n".join([
            'store { kind: postgres postgres: "%s" lease_ms: %d lease_poll_ms: 50 }'
            % (cls.pg.conninfo(), LEASE_MS),
            'dns { servers: "127.0.0.1:%s" timeout_ms: 1000 }' % cls.sim.ports["dns"],
            'outbound { allowed: "127.0.0.0/8" }',
            'federation_tls { ca_mode: replace ca_files: "%s" }' % cls.sim.ca,
            'fetch { order: direct_only connect_timeout_ms: 1000 request_timeout_ms: %d'
            ' budget_ms: %d well_known_port: %d }' % (BUDGET_MS - 500, BUDGET_MS,
                                                      harness.free_port()),
            'refresher { interval_seconds: 1 concurrency: 200 min_interval_seconds: 1 }',
        ]) + "\n"
        cls.replicas = [cls.start_replica() for _ in range(3)]

    @classmethod
    def start_replica(cls):
        kv = harness.Keyverifier(BINARY, cls.config, harness.tmpdir("data")).start()
        kv.stub = service_pb2_grpc.KeyVerifierStub(
            grpc.insecure_channel("127.0.0.1:%d" % kv.port,
                                  options=[("grpc.max_concurrent_streams", 2000)]))
        return kv

    def lookup(self, replica, i, timeout=30):
        return replica.stub.VerifyServerKeys.future(
            service_pb2.VerifyServerKeysRequest(server_name=name(i)), timeout=timeout)

    def test_01_three_thousand_concurrent_cold_lookups_make_one_request_at_the_origin(self):
        self.sim.control("/config", {"delays": {name(1): 500}})
        try:
            futures = [self.lookup(self.replicas[k % 3], 1) for k in range(3000)]
            answers = [f.result() for f in futures]
        finally:
            self.sim.control("/config", {"delays": {}})
        self.assertEqual({a.server_name for a in answers}, {name(1)})
        self.assertEqual({a.verify_keys[0].key_id for a in answers}, {"ed25519:sim"})
        self.assertEqual(self.sim.key_requests(name(1)), 1)

    def test_02_a_lease_holder_killed_mid_fetch_is_replaced_within_the_lease_time(self):
        # s2 answers after 3 s: replica 0 takes the lease and is killed
        # while it waits; replica 1 waits for it, then takes over.
        self.sim.control("/config", {"delays": {name(2): 3000}})
        try:
            holder = self.lookup(self.replicas[0], 2)
            harness.wait_for(lambda: self.sim.key_requests(name(2)) == 1,
                             "replica 0 to ask the origin")
            waiting = self.lookup(self.replicas[1], 2, timeout=LEASE_MS / 1000 + 10)
            time.sleep(0.5)
            self.assertEqual(self.sim.key_requests(name(2)), 1)  # it waits, it does not fetch
            killed_at = time.monotonic()
            self.replicas[0].kill9()
            answer = waiting.result()
            took = time.monotonic() - killed_at
            self.assertEqual(answer.server_name, name(2))
            self.assertEqual(answer.source.kind, service_pb2.KeySource.ORIGIN)
            # Taken over when the lease ran out, then one fetch (3 s).
            self.assertLess(took, LEASE_MS / 1000 + 3 + 2)
            self.assertEqual(self.sim.key_requests(name(2)), 2)
            with self.assertRaises(grpc.RpcError):
                holder.result()
        finally:
            self.sim.control("/config", {"delays": {}})
            self.replicas[0] = self.start_replica()

    def test_03_a_refresher_pass_over_a_thousand_servers_fetches_each_once(self):
        # Short-lived keys, known to all three replicas (each looks every
        # server up; the leases make that one fetch per server).
        self.sim.control("/config", {"valid_for_ms": 20000})
        for replica in self.replicas:
            for chunk in range(REFRESHED.start, REFRESHED.stop, 250):
                futures = [self.lookup(replica, i) for i in range(chunk, chunk + 250)]
                for f in futures:
                    f.result()
        # From now on answers live a day: each server's next fetch is its
        # refresh, and after it nothing is due. A fetch that arrives while
        # the setting changes may get either; those few are left out.
        before = self.sim.stats()
        self.sim.control("/config", {"valid_for_ms": 86400000})
        switched = self.sim.stats()
        steady = [i for i in REFRESHED
                  if self.sim.key_requests(name(i), before) == self.sim.key_requests(name(i), switched)]
        self.assertGreater(len(steady), 900)

        def all_refreshed():
            s = self.sim.stats()
            return all(self.sim.key_requests(name(i), s) > self.sim.key_requests(name(i), switched)
                       for i in REFRESHED)
        harness.wait_for(all_refreshed, "every server to be refreshed", timeout=90)
        time.sleep(4)  # more passes of all three refreshers
        final = self.sim.stats()
        refreshes = {i: self.sim.key_requests(name(i), final) - self.sim.key_requests(name(i), before)
                     for i in steady}
        not_once = {name(i): n for i, n in refreshes.items() if n != 1}
        self.assertEqual(not_once, {}, "servers not refreshed exactly once")
        refreshed = sum(float(harness.metric(kv.metrics(),
                                             'keyverifier_refreshes_total{outcome="ok"}'))
                        for kv in self.replicas)
        self.assertGreaterEqual(refreshed, len(REFRESHED))

    def test_04_keys_one_replica_learns_reach_the_others_memory_without_a_fetch(self):
        server = 7
        for replica in self.replicas:
            r = self.lookup(replica, server).result()
            self.assertEqual([k.key_id for k in r.verify_keys], ["ed25519:sim"])
        self.assertEqual(self.sim.key_requests(name(server)), 1)
        # The server rotates its key; replica 0 is asked for the new one and
        # fetches. The others are told through the database and read the
        # store: their next plain lookups (answered from memory) show it.
        self.sim.control("/config", {"key_change": {name(server): "rotate"}})
        try:
            r = self.replicas[0].stub.VerifyServerKeys(service_pb2.VerifyServerKeysRequest(
                server_name=name(server), key_ids=["ed25519:new"]), timeout=30)
            self.assertEqual([k.key_id for k in r.verify_keys], ["ed25519:new"])
            self.assertEqual(self.sim.key_requests(name(server)), 2)
            for replica in self.replicas[1:]:
                def rotated():
                    r = self.lookup(replica, server).result()
                    return [k.key_id for k in r.verify_keys] == ["ed25519:new"] and \
                        [k.key_id for k in r.old_verify_keys] == ["ed25519:sim"]
                harness.wait_for(rotated, "the rotation to reach another replica", timeout=10)
            self.assertEqual(self.sim.key_requests(name(server)), 2)
        finally:
            self.sim.control("/config", {"key_change": {}})

    def test_05_a_database_outage_loses_nothing(self):
        kv = self.replicas[1]
        cached, cold, frozen_cold = 30, 31, 32
        self.lookup(kv, cached).result()
        self.pg.stop()
        try:
            # Cached servers are answered from memory; a cold one is fetched
            # and answered, though the store cannot take it yet.
            self.assertEqual(self.lookup(kv, cached, timeout=5).result().server_name, name(cached))
            r = self.lookup(kv, cold, timeout=15).result()
            self.assertEqual(r.source.kind, service_pb2.KeySource.ORIGIN)
            r = self.lookup(kv, cold, timeout=5).result()  # from memory, no second fetch
            self.assertEqual(self.sim.key_requests(name(cold)), 1)
        finally:
            self.pg.start()
        # A frozen postmaster: open connections go on, new ones hang.
        self.pg.freeze()
        try:
            self.assertEqual(self.lookup(kv, cached, timeout=5).result().server_name, name(cached))
            r = self.lookup(kv, frozen_cold, timeout=15).result()
            self.assertEqual(r.server_name, name(frozen_cold))
        finally:
            self.pg.thaw()
        # Back: what was fetched during the outage reaches the store. A new
        # replica, with the origin gone, answers from the store alone.
        self.sim.control("/config", {"dead": [cold]})
        try:
            fresh = self.start_replica()
            def stored():
                try:
                    return self.lookup(fresh, cold, timeout=5).result().source.kind == \
                        service_pb2.KeySource.CACHE
                except grpc.RpcError:
                    return False
            harness.wait_for(stored, "the outage's answer to reach the store", timeout=30)
            self.assertEqual(self.sim.key_requests(name(cold)), 1)
            fresh.terminate()
        finally:
            self.sim.control("/config", {"dead": []})


if __name__ == "__main__":
    sys.exit(harness.run_tests(ReplicasTest, "replicas_test"))
