"""Real parts on loopback for integration tests: dnsmasq, scripted HTTPS
Matrix servers with their own test CAs, the keyverifier binary, Prometheus.
Every process started here is stopped by stop_all(), also on failure.

Keys and signatures are made with Debian's python3-signedjson, the Python
reference implementation, so the service is checked against it.
"""
import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import sys
import time
import unittest
import urllib.request
import xml.etree.ElementTree as ET

from canonicaljson import encode_canonical_json
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json  # noqa: F401 (re-exported)

_PROCESSES = []
_CLEANUPS = []


def use_service_stubs(stub_file):
    """Puts the generated Python stubs on sys.path, given one of their files
    (bazel's $(locations //protos:service_py_grpc)): afterwards
    `from keyverifier.v1 import service_pb2` works."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(stub_file)))))


def tmpdir(name):
    base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
    return tempfile.mkdtemp(prefix=name + "-", dir=base)


def free_port():
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    _PROCESSES.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_all():
    for p in reversed(_PROCESSES):
        stop(p)
    for cleanup in reversed(_CLEANUPS):
        try:
            cleanup()
        except Exception:  # noqa: BLE001 (best effort, after a failure too)
            pass


def wait_for(predicate, what, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


# --- DNS ----------------------------------------------------------------------

def start_dnsmasq(domain=None, srv=(), hosts=(), cnames=(), conf_file=None):
    """srv: (name, target, port); hosts: (name, address); conf_file: more
    records in dnsmasq's own format (e.g. the simulated federation's)."""
    port = free_port()
    import grp
    import pwd
    args = ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--port=%d" % port, "--listen-address=127.0.0.1", "--bind-interfaces",
            "--no-resolv", "--no-hosts", "--pid-file=", "--log-facility=-",
            "--user=" + pwd.getpwuid(os.geteuid()).pw_name,
            "--group=" + grp.getgrgid(os.getegid()).gr_name]
    if domain:
        args.append("--local=/%s/" % domain)
    if conf_file:
        args.append("--conf-file=" + conf_file)
    args += ["--srv-host=%s,%s,%d,0,0" % s for s in srv]
    args += ["--host-record=%s,%s" % h for h in hosts]
    args += ["--cname=%s,%s" % c for c in cnames]
    p = spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(up, "dnsmasq")
    return p, port


# --- Matrix servers -----------------------------------------------------------

def error_detail(log_text, details):
    """The service's log line for an error a caller got: the caller's message
    ends with the error id, and the details are logged under it. None when no
    single line has it."""
    error_id = details.rsplit(" ", 1)[-1]
    lines = [l for l in log_text.splitlines() if error_id in l]
    return lines[0] if len(lines) == 1 else None


def metric(text, name):
    """The value of the unlabelled sample `name` in a Prometheus text scrape."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return parts[1]
    raise AssertionError("no metric %s in the scrape" % name)


def unpadded(b):
    return base64.b64encode(b).decode().rstrip("=")


class MatrixKeys:
    """A server's signing key and the key responses it publishes."""

    def __init__(self, server_name, version="a"):
        self.server_name = server_name
        self.key = generate_signing_key(version)
        self.key_id = "ed25519:" + version

    def public_b64(self):
        return encode_verify_key_base64(get_verify_key(self.key))

    def old_entry(self, expired_ts):
        """This key as an old_verify_keys entry."""
        return {self.key_id: {"key": self.public_b64(), "expired_ts": expired_ts}}

    def response(self, valid_until_ts, old=None):
        body = {"server_name": self.server_name, "valid_until_ts": valid_until_ts,
                "verify_keys": {self.key_id: {"key": self.public_b64()}},
                "old_verify_keys": old or {}}
        return sign_json(body, self.server_name, self.key)

    def sign_event(self, event, redact):
        """Adds the content hash and this server's signature (room v10)."""
        hashed = {k: v for k, v in event.items() if k not in ("hashes", "signatures", "unsigned")}
        event["hashes"] = {"sha256": unpadded(hashlib.sha256(encode_canonical_json(hashed)).digest())}
        signed = sign_json(redact(dict(event)), self.server_name, self.key)
        event["signatures"] = signed["signatures"]
        return event


class HttpsServer:
    """tests/testing/https_server.py: a scripted HTTPS server with its own CA."""

    def __init__(self, script, names, routes):
        self.dir = tmpdir("https")
        routes_path = os.path.join(self.dir, "routes.json")
        with open(routes_path, "w") as f:
            json.dump(routes, f)
        self.proc = spawn(["/usr/bin/python3", script, "--dir", self.dir, "--names",
                           ",".join(names), "--routes", routes_path],
                          stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            raise RuntimeError("HTTPS server did not start: %r" % line)
        self.port = int(m.group(1))
        self.ca = os.path.join(self.dir, "ca.pem")

    def set_routes(self, routes):
        tmp = os.path.join(self.dir, "routes.json.new")
        with open(tmp, "w") as f:
            json.dump(routes, f)
        os.replace(tmp, os.path.join(self.dir, "routes.json"))

    def requests(self, path=None):
        try:
            with open(os.path.join(self.dir, "requests.jsonl")) as f:
                out = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []
        return [r for r in out if path is None or r["path"] == path]

    def stop(self):
        stop(self.proc)


# --- keyverifier --------------------------------------------------------------

class Keyverifier:
    """env: the process's environment (e.g. libpq's PG* variables), instead
    of the test's."""

    def __init__(self, binary, config_text, data_dir, env=None):
        self.binary = binary
        self.env = env
        self.dir = tmpdir("keyverifier")
        self.config = os.path.join(self.dir, "keyverifier.textproto")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.data_dir = data_dir
        self.log_path = os.path.join(self.dir, "keyverifier.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = spawn([self.binary, "--config", self.config, "--listen", "127.0.0.1:0",
                           "--metrics_listen", "127.0.0.1:0", "--data_dir", self.data_dir,
                           "--grace_seconds", "2"], stderr=self.log, env=self.env)

        def ports():
            text = open(self.log_path).read()
            if self.proc.poll() is not None:
                raise RuntimeError("keyverifier exited: " + text)
            g = re.search(r"serving on .*?\(port (\d+)\)", text)
            m = re.search(r"metrics on .*?\(port (\d+)\)", text)
            return (int(g.group(1)), int(m.group(1))) if g and m else None
        self.port, self.metrics_port = wait_for(ports, "keyverifier to listen")
        return self

    def kill9(self):
        stop(self.proc, signal.SIGKILL)

    def terminate(self):
        stop(self.proc)
        return self.proc.returncode

    def log_text(self):
        return open(self.log_path).read()

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=5) as r:
            return r.read().decode()


# --- Prometheus ---------------------------------------------------------------

class Prometheus:
    """Scrapes `target` (HOST:PORT, or a list of them) every second as job
    keyverifier; rule_files are evaluated every second."""

    def __init__(self, target, rule_files=()):
        self.dir = tmpdir("prometheus")
        self.port = free_port()
        targets = [target] if isinstance(target, str) else list(target)
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: keyverifier\n"
                    "    static_configs:\n      - targets: [%s]\n"
                    % ", ".join("'%s'" % t for t in targets))
            if rule_files:
                f.write("rule_files:\n" + "".join("  - '%s'\n" % r for r in rule_files))
        self.proc = spawn(["/usr/bin/prometheus", "--config.file=" + config,
                           "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                           "--web.listen-address=127.0.0.1:%d" % self.port],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def query(self, expr):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (
            self.port, urllib.request.quote(expr))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.loads(r.read())
        except OSError:
            return None
        return body["data"]["result"] if body.get("status") == "success" else None

    def api(self, path):
        """The data of a GET /api/v1/PATH, or None while Prometheus is not
        answering."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/%s" % (self.port, path),
                                        timeout=5) as r:
                body = json.loads(r.read())
        except OSError:
            return None
        return body["data"] if body.get("status") == "success" else None

    def alerts(self):
        """Active alerts (pending or firing), from /api/v1/alerts."""
        data = self.api("alerts")
        return None if data is None else data["alerts"]


# --- The simulated federation -------------------------------------------------

class SimFederation:
    """tests/testing/sim_federation.py (servers s0.sim.test ... behind its
    own dnsmasq, a notary, dead servers), stopped with the test."""

    def __init__(self, script, servers, dead="", well_known=""):
        self.dir = tmpdir("sim")
        args = ["/usr/bin/python3", script, "--dir", self.dir, "--servers", str(servers),
                "--exit-on-stdin-eof"]
        if dead:
            args += ["--dead", dead]
        if well_known:  # indices with A records that serve .well-known
            args += ["--well-known", well_known]
        self.proc = spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.ports = dict(kv.split("=") for kv in line.split()[1:])
        _, dns_port = start_dnsmasq(conf_file=os.path.join(self.dir, "dnsmasq.conf"))
        self.ports["dns"] = str(dns_port)
        self.ca = os.path.join(self.dir, "ca.pem")

    def control(self, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%s%s" % (self.ports["control"], path),
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode() or "{}")

    def stats(self):
        return self.control("/stats")

    def key_requests(self, server, stats=None):
        stats = stats or self.stats()
        return stats["requests"].get(server, {}).get("/_matrix/key/v2/server", 0)


# --- PostgreSQL ---------------------------------------------------------------

class Postgres:
    """A throwaway PostgreSQL server from Debian's packages on a loopback port.
    As root it runs as user postgres (which refuses to run as root), in a
    directory under /tmp that user can enter."""

    def __init__(self):
        import glob
        import pwd
        import shutil
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (tools/bootstrap.sh)")
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="keyverifier-pg-", dir="/tmp")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        _CLEANUPS.append(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self._run([self.bin + "/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--no-locale", "--no-sync"])
        self.port = free_port()
        self.start()
        # Run in reverse: a frozen server is thawed before it is stopped.
        _CLEANUPS.append(lambda: self._run([self.bin + "/pg_ctl", "stop", "-D", self.data,
                                            "-m", "immediate", "-w"], check=False))
        _CLEANUPS.append(self.thaw)

    def start(self):
        self._run([self.bin + "/pg_ctl", "start", "-D", self.data, "-w", "-t", "60",
                   "-l", os.path.join(self.dir, "server.log"), "-o",
                   "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (
                       self.port, self.dir)])

    def stop(self):
        """Stops the server (connections are closed): an outage."""
        self._run([self.bin + "/pg_ctl", "stop", "-D", self.data, "-m", "fast", "-w"])

    def _postmaster(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def freeze(self):
        """SIGSTOP to the postmaster: new connections hang, open ones go on."""
        os.kill(self._postmaster(), signal.SIGSTOP)

    def thaw(self):
        try:
            os.kill(self._postmaster(), signal.SIGCONT)
        except (OSError, ValueError):
            pass

    def _run(self, args, check=True):
        if self.as_root:
            runuser = next(p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.path.exists(p))
            args = [runuser, "-u", "postgres", "--"] + args
        subprocess.run(args, check=check, cwd="/", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def conninfo(self):
        return "host=127.0.0.1 port=%d dbname=postgres user=postgres connect_timeout=10" % self.port


# --- running ------------------------------------------------------------------

class JUnitResult(unittest.TextTestResult):
    """Also records each case for Bazel's test.xml, so CI counts them."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.cases = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.cases.append((test, None))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.cases.append((test, ("failure", self._exc_info_to_string(err, test))))

    def addError(self, test, err):
        super().addError(test, err)
        self.cases.append((test, ("error", self._exc_info_to_string(err, test))))


def run_tests(test_class, suite_name):
    """Runs a TestCase class; results as JUnit XML where Bazel asks for them."""
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(test_class)
    runner = unittest.TextTestRunner(resultclass=JUnitResult, verbosity=2, stream=sys.stdout)
    try:
        result = runner.run(suite)
    finally:
        stop_all()
    xml_path = os.environ.get("XML_OUTPUT_FILE")
    if xml_path:
        suite_el = ET.Element("testsuite", name=suite_name, tests=str(len(result.cases)))
        for test, problem in result.cases:
            case = ET.SubElement(suite_el, "testcase", name=test.id().split(".")[-1],
                                 classname=test_class.__name__)
            if problem:
                ET.SubElement(case, problem[0], message=problem[1][:200]).text = problem[1]
        # setUpClass errors leave no cases: say so.
        for test, err in result.errors:
            if not hasattr(test, "id") or "setUpClass" in str(test):
                case = ET.SubElement(suite_el, "testcase", name="setUpClass", classname=test_class.__name__)
                ET.SubElement(case, "error", message="setup failed").text = err
        ET.ElementTree(ET.Element("testsuites")).getroot().append(suite_el)
        root = ET.Element("testsuites")
        root.append(suite_el)
        ET.ElementTree(root).write(xml_path)
    return 0 if result.wasSuccessful() else 1
