#!/usr/bin/python3
"""Every metric the dashboard's queries and the alerting rules read is one
the service binary exports: the binary is started, called once (RPC metrics
appear with the first call), and its /metrics scraped; a histogram is read
through its _bucket, _sum and _count series. kube-state-metrics series (kube_*)
are the only names from elsewhere, and only the disruption-budget rule and
panel use them. The checker is shown to catch a wrong name.

Usage: monitoring_metrics_test.py KEYVERIFIER CLI ALERTS_YAML DASHBOARD_JSON HARNESS_PY
"""
import json
import os
import subprocess
import sys
import unittest

import yaml

BINARY, CLI, ALERTS, DASHBOARD, HARNESS = sys.argv[1:6]
sys.path.insert(0, os.path.dirname(os.path.abspath(HARNESS)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import promql_names  # noqa: E402

KUBE_STATE_METRICS = {"kube_poddisruptionbudget_status_current_healthy",
                      "kube_poddisruptionbudget_status_desired_healthy"}


class MonitoringMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kv = harness.Keyverifier(BINARY, 'fetch { disabled: true }\nrefresher { disabled: true }\n',
                                     harness.tmpdir("data")).start()
        # One counted call (a caller's mistake is counted like any other).
        out = subprocess.run([CLI, "keys", "--target", "127.0.0.1:%d" % cls.kv.port,
                              "--timeout-ms", "5000", "not a server name!"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, out
        cls.scrape = cls.kv.metrics()
        cls.exported = promql_names.scraped_names(cls.scrape)
        # The serving-certificate metrics exist when a port has TLS: a second
        # binary with a certificate on its gRPC port adds them.
        tls_dir = harness.tmpdir("tls")
        cert, key = os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=kv.test",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        cls.tls_kv = harness.Keyverifier(
            BINARY, 'fetch { disabled: true }\nrefresher { disabled: true }\n'
            'tls { cert_file: "%s" key_file: "%s" }\n' % (cert, key),
            harness.tmpdir("tls-data")).start()
        tls_names = promql_names.scraped_names(cls.tls_kv.metrics())
        assert "keyverifier_serving_certificate_expiry_timestamp_seconds" in tls_names, tls_names
        cls.exported |= tls_names
        with open(ALERTS) as f:
            cls.rules = promql_names.rule_expressions(yaml.safe_load(f))
        with open(DASHBOARD) as f:
            cls.dashboard = json.load(f)
        cls.queries = promql_names.dashboard_queries(cls.dashboard)

    def test_the_scrape_has_the_rpc_and_histogram_series(self):
        for name in ("keyverifier_rpcs_total", "keyverifier_rpc_duration_seconds_bucket",
                     "keyverifier_rpc_duration_seconds_sum", "keyverifier_rpc_duration_seconds_count",
                     "keyverifier_refresh_lag_seconds_bucket"):
            self.assertIn(name, self.exported)
        # A histogram's own name is no series.
        self.assertNotIn("keyverifier_rpc_duration_seconds", self.exported)

    def test_every_dashboard_query_names_exported_metrics(self):
        self.assertGreater(len(self.queries), 20)
        self.assertEqual(promql_names.unknown_names(self.queries, self.exported), {})

    def test_every_alert_expression_names_exported_metrics(self):
        self.assertGreater(len(self.rules), 10)
        self.assertEqual(promql_names.unknown_names(self.rules, self.exported), {})

    def test_only_the_disruption_budget_reads_kube_state_metrics(self):
        outside = set()
        for expr in self.rules + self.queries:
            outside |= {n for n in promql_names.metric_names(expr) if n not in self.exported}
        self.assertEqual(outside, KUBE_STATE_METRICS)

    def test_the_dashboard_shows_what_every_alert_reads(self):
        shown = set().union(*(promql_names.metric_names(q) for q in self.queries))
        for expr in self.rules:
            self.assertLessEqual(promql_names.metric_names(expr), shown, expr)

    def test_the_checker_catches_unknown_names(self):
        wrong = {
            "panels": [{"type": "row", "panels": [{"targets": [
                {"expr": 'sum(rate(keyverifier_key_fetchs_total{outcome="error"}[$__rate_interval]))'}]}]},
                {"targets": [{"expr": "histogram_quantile(0.99, sum by (le) "
                                      "(rate(keyverifier_rpc_duration_seconds[5m])))"},
                             {"expr": "sum(keyverifier_keyring_servers) / keyverifier_no_such_gauge"}]}],
            "templating": {"list": [{"type": "query", "query": {
                "query": "label_values(keyverifier_build_infos, namespace)"}}]},
        }
        found = promql_names.unknown_names(promql_names.dashboard_queries(wrong), self.exported)
        self.assertEqual(sorted(n for names in found.values() for n in names),
                         ["keyverifier_build_infos", "keyverifier_key_fetchs_total",
                          "keyverifier_no_such_gauge", "keyverifier_rpc_duration_seconds"])
        rule_file = {"groups": [{"name": "g", "rules": [
            {"alert": "A", "expr": "rate(keyverifier_key_fetches_total[5m]) > 0 "
                                   "and on() keyverifier_refresher_lag_seconds > 1"}]}]}
        self.assertEqual(promql_names.unknown_names(promql_names.rule_expressions(rule_file),
                                                    self.exported),
                         {rule_file["groups"][0]["rules"][0]["expr"]:
                          ["keyverifier_refresher_lag_seconds"]})


if __name__ == "__main__":
    sys.exit(harness.run_tests(MonitoringMetricsTest, "monitoring_metrics_test"))
