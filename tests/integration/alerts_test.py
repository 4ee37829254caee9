#!/usr/bin/python3
"""The alerting rules on a real Prometheus: three keyverifier processes
sharing one PostgreSQL (connected as the cluster overlay does: libpq's
PG* environment plus the config's connection string), the simulated
federation, and Prometheus scraping all three every second with
k8s/monitoring/alerts.yaml loaded (a copy whose `for:` durations are 3 s).
A drill stops origins from answering; the key fetch failure alert goes
pending, then firing, read back from /api/v1/alerts.

Usage: alerts_test.py KEYVERIFIER SIM_FEDERATION_PY ALERTS_YAML STUB_DIR
"""
import concurrent.futures
import os
import sys
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BINARY, SIM_SCRIPT, ALERTS = sys.argv[1:4]
harness.use_service_stubs(sys.argv[4])
import grpc  # noqa: E402
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402

FOR = "3s"
DEAD = list(range(10, 30))
FETCH_ALERT = "KeyverifierKeyFetchFailures"


def name(i):
    return "s%d.sim.test" % i


class AlertsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.Postgres()
        cls.sim = harness.SimFederation(SIM_SCRIPT, 40)
        config = "\n".join([
            'store { kind: postgres postgres: "application_name=keyverifier" }',
            'dns { servers: "127.0.0.1:%s" timeout_ms: 1000 }' % cls.sim.ports["dns"],
            'outbound { allowed: "127.0.0.0/8" }',
            'federation_tls { ca_mode: replace ca_files: "%s" }' % cls.sim.ca,
            'fetch { order: direct_only connect_timeout_ms: 1000 request_timeout_ms: 1500'
            ' budget_ms: 3000 well_known_port: %d }' % harness.free_port(),
            'refresher { disabled: true }',
        ]) + "\n"
        env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(cls.pg.port),
                   PGDATABASE="postgres", PGUSER="postgres")
        cls.replicas = [harness.Keyverifier(BINARY, config, harness.tmpdir("data"), env).start()
                        for _ in range(3)]
        cls.stubs = [service_pb2_grpc.KeyVerifierStub(
            grpc.insecure_channel("127.0.0.1:%d" % kv.port)) for kv in cls.replicas]
        # The rules as shipped, with short `for:` durations.
        with open(ALERTS) as f:
            cls.rules = yaml.safe_load(f)
        for group in cls.rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = FOR
        rules_path = os.path.join(harness.tmpdir("rules"), "alerts.yaml")
        with open(rules_path, "w") as f:
            yaml.safe_dump(cls.rules, f)
        cls.prom = harness.Prometheus(["127.0.0.1:%d" % kv.metrics_port for kv in cls.replicas],
                                      rule_files=[rules_path])
        harness.wait_for(lambda: len([r for r in (cls.prom.query('up{job="keyverifier"}') or [])
                                      if r["value"][1] == "1"]) == 3, "Prometheus to scrape all three", 60)

    def keys(self, replica, i, timeout=30):
        return self.stubs[replica].VerifyServerKeys(
            service_pb2.VerifyServerKeysRequest(server_name=name(i)), timeout=timeout)

    def test_01_the_replicas_share_one_store(self):
        first = self.keys(0, 0)
        self.assertEqual(first.source.kind, service_pb2.KeySource.ORIGIN)
        for replica in (1, 2):
            again = self.keys(replica, 0)
            self.assertEqual(again.source.kind, service_pb2.KeySource.CACHE)
            self.assertEqual(again.verify_keys[0].public_key, first.verify_keys[0].public_key)
        self.assertEqual(self.sim.key_requests(name(0)), 1)
        for i in range(1, 5):
            self.keys(i % 3, i)

    def test_02_every_rule_is_loaded_and_evaluates_and_none_is_active(self):
        expected = sorted(r["alert"] for g in self.rules["groups"] for r in g["rules"])

        def evaluated():
            data = self.prom.api("rules")
            rules = [r for g in (data or {}).get("groups", []) for r in g["rules"]]
            # Prometheus reports a rule never evaluated at year 1.
            done = [r for r in rules if not r.get("lastEvaluation", "0001").startswith("0001")]
            return rules if len(done) == len(expected) else None
        # Two evaluations after the successful fetches are scraped.
        time.sleep(3)
        rules = harness.wait_for(evaluated, "the rules to be evaluated", 30)
        self.assertEqual(sorted(r["name"] for r in rules), expected)
        for r in rules:
            self.assertEqual(r["health"], "ok", r)
        self.assertEqual(self.prom.alerts(), [])
        ok = self.prom.query('sum(keyverifier_key_fetches_total{outcome="ok"})')
        self.assertGreaterEqual(float(ok[0]["value"][1]), 5)

    def test_03_origins_down_make_the_fetch_failure_alert_pending_then_firing(self):
        self.sim.control("/config", {"dead": DEAD})
        try:
            with concurrent.futures.ThreadPoolExecutor(len(DEAD)) as pool:
                futures = [pool.submit(self.keys, k % 3, i) for k, i in enumerate(DEAD)]
                codes = []
                for f in futures:
                    with self.assertRaises(grpc.RpcError) as e:
                        f.result()
                    codes.append(e.exception.code())
            self.assertEqual(set(codes), {grpc.StatusCode.UNAVAILABLE})
            states = []

            def firing():
                alerts = [a for a in (self.prom.alerts() or [])
                          if a["labels"]["alertname"] == FETCH_ALERT]
                if alerts and (not states or states[-1] != alerts[0]["state"]):
                    states.append(alerts[0]["state"])
                return alerts[0] if alerts and alerts[0]["state"] == "firing" else None
            alert = harness.wait_for(firing, FETCH_ALERT + " to fire", 60)
            print("%s: %s, error ratio %s" % (FETCH_ALERT, " -> ".join(states), alert["value"]))
            self.assertEqual(states, ["pending", "firing"])
            self.assertEqual(alert["labels"]["severity"], "warning")
            self.assertGreater(float(alert["value"]), 0.25)
            errors = self.prom.query('sum(keyverifier_key_fetches_total{outcome="error"})')
            self.assertGreaterEqual(float(errors[0]["value"][1]), len(DEAD))
            # The drill's calls failed too; nothing unrelated is alerting.
            active = {a["labels"]["alertname"] for a in self.prom.alerts()}
            self.assertLessEqual(active, {FETCH_ALERT, "KeyverifierRpcErrors"}, active)
        finally:
            self.sim.control("/config", {"dead": []})


if __name__ == "__main__":
    sys.exit(harness.run_tests(AlertsTest, "alerts_test"))
