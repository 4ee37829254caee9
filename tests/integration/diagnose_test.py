#!/usr/bin/python3
"""keyverifier_cli diagnose against the keyverifier binary on a simulated
federation on loopback (tests/testing/sim_federation.py behind a real
dnsmasq), with one server broken in each way the report must catch and a
healthy one. Every report is asked for through the real CLI binary (--json,
and the text form for the healthy server); the exit code says whether
federation with the server works.

Usage: diagnose_test.py KEYVERIFIER SIM_FEDERATION_PY KEYVERIFIER_CLI STUB_DIR
"""
import hashlib
import json
import os
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from signedjson.key import decode_signing_key_base64  # noqa: E402

BINARY, SIM_SCRIPT, CLI = sys.argv[1:4]
harness.use_service_stubs(sys.argv[4])
import grpc  # noqa: E402
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402

DAY_MS = 24 * 3600 * 1000

# One server per way of being broken.
HEALTHY = 0
LEGACY_SRV = 1      # no .well-known, only _matrix._tcp
CNAME_SRV = 2       # the SRV target is an alias
WRONG_NAME = 3      # certificates
EXPIRED = 4
SELF_SIGNED = 5
SPLIT_KEYS = 6      # two addresses, two keys
SHORT_VALID = 7     # valid_until_ts 10 minutes ahead
LONG_VALID = 8      # valid_until_ts 30 days ahead
REUSED = 9          # ed25519:sim bound to another key after the store saw it
VANISHED = 10       # ed25519:sim gone, not in old_verify_keys
NOTARY_LIES = 11    # the notary vouches for another key
NO_VERSION = 12     # /_matrix/federation/v1/version answers 404
SERVERS = 13


def name(i):
    return "s%d.sim.test" % i


def sim_public_b64(server):
    """The simulated server's deterministic public key (seed: SHA-256 of its name)."""
    keys = harness.MatrixKeys(server, "sim")
    seed = hashlib.sha256(server.encode()).digest()
    keys.key = decode_signing_key_base64("ed25519", "sim", harness.unpadded(seed))
    return keys.public_b64()


class Sim:
    def __init__(self):
        self.dir = harness.tmpdir("sim")
        self.proc = harness.spawn(
            ["/usr/bin/python3", SIM_SCRIPT, "--dir", self.dir, "--servers", str(SERVERS),
             "--legacy-srv", str(LEGACY_SRV), "--cname-srv", str(CNAME_SRV),
             "--split-keys", str(SPLIT_KEYS), "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.ports = dict(kv.split("=") for kv in line.split()[1:])
        _, dns_port = harness.start_dnsmasq(conf_file=os.path.join(self.dir, "dnsmasq.conf"))
        self.ports["dns"] = str(dns_port)
        self.ca = os.path.join(self.dir, "ca.pem")

    def configure(self, settings):
        req = urllib.request.Request(
            "http://127.0.0.1:%s/config" % self.ports["control"],
            data=json.dumps(settings).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())


def config(sim):
    return "\n".join([
        'dns { servers: "127.0.0.1:%s" timeout_ms: 1000 }' % sim.ports["dns"],
        'outbound { allowed: "127.0.0.0/8" }',
        'federation_tls { ca_mode: replace ca_files: "%s" }' % sim.ca,
        'fetch { order: direct_only connect_timeout_ms: 2000 request_timeout_ms: 4000'
        ' budget_ms: 8000 well_known_port: %d'
        ' notaries { server_name: "notary.sim.test" verify_keys { key: "ed25519:sim"'
        ' value: "%s" } } }' % (harness.free_port(), sim_public_b64("notary.sim.test")),
        'refresher { disabled: true }',
    ]) + "\n"


class DiagnoseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim()
        cls.kv = harness.Keyverifier(BINARY, config(cls.sim), harness.tmpdir("data")).start()
        cls.stub = service_pb2_grpc.KeyVerifierStub(
            grpc.insecure_channel("127.0.0.1:%d" % cls.kv.port))
        # The store sees the servers' first keys; then they change them.
        for i in (REUSED, VANISHED):
            keys = cls.stub.VerifyServerKeys(
                service_pb2.VerifyServerKeysRequest(server_name=name(i)), timeout=20)
            assert [k.key_id for k in keys.verify_keys] == ["ed25519:sim"], keys
        cls.sim.configure({
            "certs": {name(WRONG_NAME): "wrong_name", name(EXPIRED): "expired",
                      name(SELF_SIGNED): "self_signed"},
            "valid_for": {name(SHORT_VALID): 10 * 60 * 1000, name(LONG_VALID): 30 * DAY_MS},
            "key_change": {name(REUSED): "reuse", name(VANISHED): "vanish"},
            "notary_lies": [name(NOTARY_LIES)],
            "no_version": [name(NO_VERSION)],
        })

    def cli(self, server, *extra):
        return subprocess.run(
            [CLI, "diagnose", server, "--target", "127.0.0.1:%d" % self.kv.port,
             "--timeout-ms", "30000"] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)

    def report(self, i):
        """(exit code, report) of `keyverifier_cli diagnose s<i> --json`."""
        p = self.cli(name(i), "--json")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return p.returncode, json.loads(p.stdout)

    def finding(self, report, code):
        found = [f for f in report["findings"] if f["code"] == code]
        self.assertTrue(found, "no %s finding in %s" % (code, json.dumps(report["findings"])))
        self.assertTrue(found[0]["fix"])
        return found[0]

    def codes(self, report, severity=None):
        return sorted(f["code"] for f in report["findings"]
                      if severity is None or f["severity"] == severity)

    def test_healthy_server_exits_0_with_a_full_report(self):
        code, r = self.report(HEALTHY)
        self.assertEqual(code, 0, json.dumps(r["findings"]))
        self.assertTrue(r["federation_ok"])
        self.assertEqual(self.codes(r, "ERROR"), [])
        self.assertEqual(self.codes(r, "WARNING"), [])
        d = r["discovery"]
        self.assertTrue(d["well_known"]["attempted"])
        self.assertNotEqual(d["well_known"]["error"], "")  # the names have no A records
        self.assertEqual([s["name"] for s in d["srv"]],
                         ["_matrix-fed._tcp.s0.sim.test", "_matrix._tcp.s0.sim.test"])
        self.assertEqual([s["found"] for s in d["srv"]], [True, False])
        self.assertEqual(d["srv"][0]["targets"][0]["target"], "live.sim.test")
        self.assertEqual(d["srv"][0]["targets"][0]["addresses"], ["127.0.0.1"])
        self.assertEqual(d["srv"][0]["targets"][0]["cname_chain"], [])
        self.assertEqual(d["endpoints"], ["127.0.0.1:%s" % self.sim.ports["https"]])
        self.assertEqual(d["tls_name"], "s0.sim.test")
        self.assertIn("_matrix-fed._tcp.s0.sim.test", d["route"])
        [a] = r["addresses"]
        self.assertTrue(a["certificate_valid"], a)
        self.assertEqual(a["certificate_rule"], "chain_verified")
        self.assertIn(a["tls_version"], ("TLSv1.2", "TLSv1.3"))
        self.assertNotEqual(a["tls_cipher"], "")
        self.assertIn("*.sim.test", a["certificate_names"])
        self.assertGreater(int(a["certificate_days_left"]), 20)
        self.assertEqual([k["key_id"] for k in a["verify_keys"]], ["ed25519:sim"])
        self.assertEqual(a["verify_keys"][0]["public_key"], sim_public_b64("s0.sim.test"))
        k = r["keys"]
        self.assertTrue(k["valid"])
        self.assertEqual(k["signed_by"], ["ed25519:sim"])
        self.assertTrue(k["addresses_agree"])
        [n] = r["notaries"]
        self.assertEqual(n["notary"], "notary.sim.test")
        self.assertTrue(n["answered"], n)
        self.assertTrue(n["agrees_with_direct"])
        self.assertTrue(r["version"]["answered"])
        self.assertEqual(r["version"]["name"], "sim_federation")
        self.assertEqual(r["version"]["version"], "1.0")
        # The text form, for operators, through the same binary.
        p = self.cli(name(HEALTHY))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("federation works", p.stdout)
        self.assertIn("SRV _matrix-fed._tcp.s0.sim.test", p.stdout)
        self.assertIn("certificate: valid", p.stdout)
        self.assertIn("sim_federation 1.0", p.stdout)

    def test_only_the_legacy_srv_name(self):
        code, r = self.report(LEGACY_SRV)
        self.assertEqual([s["found"] for s in r["discovery"]["srv"]], [False, True])
        self.assertIn("_matrix._tcp.s1.sim.test", r["discovery"]["route"])
        f = self.finding(r, "srv_legacy_only")
        self.assertEqual(f["severity"], "WARNING")
        self.assertIn("_matrix-fed._tcp.s1.sim.test", f["fix"])
        # It still federates: a warning, exit 0.
        self.assertEqual(code, 0)
        self.assertTrue(r["keys"]["valid"])

    def test_cname_srv_target(self):
        code, r = self.report(CNAME_SRV)
        target = r["discovery"]["srv"][0]["targets"][0]
        self.assertEqual(target["target"], "alias.sim.test")
        self.assertEqual(target["cname_chain"], ["alias.sim.test -> live.sim.test"])
        f = self.finding(r, "srv_target_cname")
        self.assertEqual(f["severity"], "WARNING")
        self.assertIn("alias.sim.test", f["message"])
        self.assertEqual(code, 0)

    def check_certificate(self, i, reason):
        code, r = self.report(i)
        self.assertEqual(code, 1)
        self.assertFalse(r["federation_ok"])
        [a] = r["addresses"]
        self.assertFalse(a["certificate_valid"])
        self.assertTrue(any(x.startswith(reason) for x in a["certificate_reasons"]),
                        a["certificate_reasons"])
        f = self.finding(r, "certificate_invalid")
        self.assertEqual(f["severity"], "ERROR")
        self.assertIn(reason, f["message"])
        # The key request at that address was refused by the policy.
        self.assertFalse(r["keys"]["valid"])
        self.assertIn("keys_unavailable", self.codes(r, "ERROR"))
        return a, f

    def test_certificate_for_the_wrong_name(self):
        a, f = self.check_certificate(WRONG_NAME, "hostname_mismatch")
        self.assertEqual(a["certificate_names"], ["other.test"])
        self.assertIn("s3.sim.test", f["fix"])

    def test_expired_certificate(self):
        a, f = self.check_certificate(EXPIRED, "expired")
        self.assertLess(int(a["certificate_days_left"]), 0)
        self.assertIn("renew", f["fix"])

    def test_self_signed_certificate(self):
        _, f = self.check_certificate(SELF_SIGNED, "untrusted_root")
        self.assertIn("publicly trusted CA", f["fix"])

    def test_addresses_serving_different_keys(self):
        code, r = self.report(SPLIT_KEYS)
        self.assertEqual(code, 1)
        self.assertEqual(len(r["addresses"]), 2)
        served = {a["endpoint"]: [k["key_id"] for k in a["verify_keys"]] for a in r["addresses"]}
        self.assertEqual(served, {"127.0.0.1:%s" % self.sim.ports["https"]: ["ed25519:sim"],
                                  "127.0.0.1:%s" % self.sim.ports["alt"]: ["ed25519:alt"]})
        self.assertFalse(r["keys"]["addresses_agree"])
        f = self.finding(r, "addresses_disagree")
        self.assertEqual(f["severity"], "ERROR")
        self.assertIn("ed25519:alt", f["message"])

    def test_valid_until_too_short(self):
        code, r = self.report(SHORT_VALID)
        self.assertEqual(self.finding(r, "valid_until_short")["severity"], "WARNING")
        left = int(r["keys"]["valid_until_ts"]) - int(r["checked_at_ts"])
        self.assertLess(left, 11 * 60 * 1000)
        self.assertEqual(code, 0)

    def test_valid_until_beyond_7_days(self):
        code, r = self.report(LONG_VALID)
        f = self.finding(r, "valid_until_beyond_7_days")
        self.assertEqual(f["severity"], "WARNING")
        self.assertIn("30 days", f["message"])
        self.assertEqual(code, 0)

    def test_key_id_reused_with_another_key(self):
        code, r = self.report(REUSED)
        self.assertEqual(code, 1)
        history = {h["key_id"]: h["public_key"] for h in r["keys"]["history"]}
        self.assertEqual(history, {"ed25519:sim": sim_public_b64("s9.sim.test")})
        served = {k["key_id"]: k["public_key"] for k in r["keys"]["verify_keys"]}
        self.assertNotEqual(served["ed25519:sim"], history["ed25519:sim"])
        self.assertEqual(r["keys"]["reused_key_ids"], ["ed25519:sim"])
        self.assertEqual(self.finding(r, "key_id_reused")["severity"], "ERROR")

    def test_keys_vanished_without_old_verify_keys(self):
        code, r = self.report(VANISHED)
        self.assertEqual([k["key_id"] for k in r["keys"]["verify_keys"]], ["ed25519:new"])
        self.assertEqual(r["keys"]["old_verify_keys"], [])
        self.assertEqual(r["keys"]["vanished_key_ids"], ["ed25519:sim"])
        f = self.finding(r, "keys_vanished")
        self.assertEqual(f["severity"], "WARNING")
        self.assertIn("old_verify_keys", f["fix"])
        self.assertEqual(code, 0)

    def test_notary_disagreeing_with_the_server(self):
        code, r = self.report(NOTARY_LIES)
        self.assertEqual(code, 1)
        [n] = r["notaries"]
        self.assertTrue(n["answered"])
        self.assertFalse(n["agrees_with_direct"])
        self.assertNotEqual(n["verify_keys"][0]["public_key"], sim_public_b64("s11.sim.test"))
        f = self.finding(r, "notary_disagrees")
        self.assertEqual(f["severity"], "ERROR")
        self.assertIn("notary.sim.test", f["message"])

    def test_version_endpoint_missing(self):
        code, r = self.report(NO_VERSION)
        self.assertFalse(r["version"]["answered"])
        self.assertEqual(r["version"]["http_status"], 404)
        self.assertEqual(self.finding(r, "version_missing")["severity"], "WARNING")
        self.assertEqual(code, 0)

    def test_unknown_server_is_a_report_not_an_error(self):
        p = self.cli("nowhere.sim.test", "--json")
        self.assertEqual(p.returncode, 1, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["addresses"], [])
        self.assertNotEqual(r["discovery"]["error"], "")
        self.assertEqual(self.finding(r, "discovery_failed")["severity"], "ERROR")

    def test_bad_server_name_is_unusable_input(self):
        p = self.cli("not a name")
        self.assertEqual(p.returncode, 2)
        self.assertIn("INVALID_ARGUMENT", p.stderr)


if __name__ == "__main__":
    sys.exit(harness.run_tests(DiagnoseTest, "diagnose_test"))
