#!/usr/bin/python3
"""A simulated Matrix federation on 127.0.0.1, for tests and benchmarks.

One process serves many Matrix servers at once:

  * N servers s0.sim.test ... s{N-1}.sim.test and the notary notary.sim.test
    on one HTTPS listener (the "https port"), told apart by the Host header.
    The leaf certificate names "sim.test" and "*.sim.test"; it is issued by a
    freshly generated test CA written to DIR/ca.pem (the PKI of
    https_server.py). Each server's ed25519 key is deterministic: the seed is
    SHA-256 of its UTF-8 name, the key id "ed25519:sim".
    GET /_matrix/key/v2/server answers with the server's own signed response
    (valid_until_ts = now + valid_for_ms, rounded up to the second, so that
    one signed response serves a whole second), after the server's delay.
    An unknown Host gets 404 M_NOT_FOUND, an unknown path 404 M_UNRECOGNIZED.
  * The notary answers POST /_matrix/key/v2/query and
    GET /_matrix/key/v2/query/{serverName} for every server of the sim
    (live and dead alike) with the server's own response counter-signed by
    the notary, after notary_delay_ms. Servers it does not know are left out.
  * Dead servers: their SRV records point at a second listener (the "dead
    port") that accepts TCP connections and never reads or sends a byte; the
    sockets stay open until the peer closes them or the sim stops.
    A server made dead at run time (POST /config) is stalled on the https
    port instead: its connections (told apart by SNI, peeked before the
    handshake) are accepted and never answered. A server dead at start stays
    unreachable (its DNS names the dead port).
  * Slow servers: live servers with slow_delay_ms instead of delay_ms.
  * GET /_matrix/federation/v1/version answers
    {"server": {"name": "sim_federation", "version": "1.0"}}.
  * Broken servers, for reports on them (keyverifier_cli diagnose), fixed at
    start because DNS is: --legacy-srv (only the deprecated _matrix._tcp SRV
    name), --cname-srv (the SRV target is alias.sim.test, a CNAME of
    live.sim.test), --split-keys (a second SRV record names the "alt port",
    whose listener serves every server with another key under another key
    id). And at run time (POST /config): "certs" {SERVER: "wrong_name" |
    "expired" | "self_signed"} (the certificate that server's SNI gets),
    "valid_for" {SERVER: ms} (its own valid_until_ts distance), "key_change"
    {SERVER: "reuse" (ed25519:sim now names another key) | "vanish" (a new
    key ed25519:new, ed25519:sim listed nowhere) | "rotate" (ed25519:new,
    ed25519:sim moved to old_verify_keys)}, "no_version" [SERVER...] (404
    for the version endpoint).
  * Hostile (or honest) .well-known, for the servers given with --well-known
    (fixed at start because DNS is): each gets A records (127.0.0.1) for
    itself, for m-<label>.sim.test (its delegation target, served as the
    server itself) and for loop-<label>.sim.test, and its
    GET /.well-known/matrix/server answers per POST /config "well_known"
    {SERVER: MODE}: "none" (404, the default), "delegate" (200
    {"m.server": "m-<label>.sim.test:HTTPS"}), "delegate_internal" (200,
    delegating to metadata.sim.test:HTTPS), "loop" (302 to loop-<label>'s
    .well-known, which 302s back), "chain" (302 to /hop/1, /hop/N to
    /hop/N+1, without end), "redirect_metadata", "redirect_private",
    "redirect_zero" (302 to the .well-known of metadata.sim.test ->
    169.254.169.254, private.sim.test -> 10.0.0.1, zero.sim.test -> 0.0.0.0),
    "redirect_ip" (302 to https://10.0.0.1:HTTPS/...), "oversized" (a valid
    delegation padded to 1 MiB), "slow" (a valid delegation, its body sent
    one byte a second). A connection to 0.0.0.0 reaches this sim on
    loopback, so a client whose address filter let zero.sim.test through
    shows up in the counts under that Host; the other internal names must
    never be connected to. Their SRV records stay, so a client that gives
    up on .well-known falls back to them.

DNS: DIR/dnsmasq.conf is written once the ports are known, for
`dnsmasq --conf-file=DIR/dnsmasq.conf` (local=/sim.test/; an SRV record
_matrix-fed._tcp.NAME -> live.sim.test:HTTPS or dead.sim.test:DEAD for every
server, unless a broken mode above says otherwise; live.sim.test and
dead.sim.test -> 127.0.0.1). The server names
themselves have no A records (but those given with --well-known), so a
.well-known lookup fails at once.
Tests start that dnsmasq themselves (tests/testing/dnsmasq.h from C++,
tests/integration/harness.py's start_dnsmasq(conf_file=...) from Python).

Counting, served as JSON by GET /stats on a plain-HTTP control listener:
requests per host and path (counted when received), in-flight requests and
their peak, the server count of every notary POST ("post_batch_sizes"),
connections open and their peak: all listeners, the https port, the dead
port, and per host on the https port (by SNI, else the first Host header).
The members: "requests" {HOST: {PATH: n}}, "post_batch_sizes" [n...],
"requests_in_flight", "peak_requests_in_flight", "open_connections",
"peak_connections" (both listeners), "open_/peak_/accepted_https_connections",
"open_/peak_/accepted_dead_connections", "open_connections_by_host",
"peak_connections_by_host" {HOST: n}.
POST /reset zeroes the counters (peaks restart from what is open now).
POST /config takes any of {"delay_ms", "notary_delay_ms", "slow_delay_ms",
"valid_for_ms", "delays": {SERVER: ms}, "slow": [SERVER...],
"dead": [SERVER...], "pad_old_keys": N, "trickle": [SERVER...],
"notary_lies": [SERVER...], "two_bodies": [SERVER...],
"well_known": {SERVER: MODE} (above)}, where a SERVER is an
index or a name (pad_old_keys: every response lists N extra old keys;
trickle: answers one byte a second; notary_lies: the notary vouches for a
key of its own under the server's key id; two_bodies: the server lists its
key id again among its old keys with another key) and each given
setting replaces the old one (so {"delays": {}} drops every per-server
delay); settings not given are kept. GET /config shows the configuration.

Prints "PORTS https=<n> dead=<n> control=<n> alt=<n>" on stdout once everything
listens (DIR/dnsmasq.conf is written by then); nothing else goes to stdout.
Stops on SIGTERM or SIGINT, and with --exit-on-stdin-eof when its stdin
closes (so it dies with the test that started it).

Usage:
  sim_federation.py --dir DIR [--servers N] [--dead 0,3,7-9] [--slow 4,5]
      [--delay-ms MS] [--slow-delay-ms MS] [--notary-delay-ms MS]
      [--valid-for-ms MS] [--legacy-srv SET] [--cname-srv SET] [--split-keys SET]
      [--well-known SET] [--exit-on-stdin-eof]

From Python (tests/integration/harness.py style):
  p = subprocess.Popen(["/usr/bin/python3", SIM, "--dir", d, "--servers", "100",
                        "--dead", "90-99"], stdout=subprocess.PIPE, text=True)
  ports = dict(kv.split("=") for kv in p.stdout.readline().split()[1:])
  _, dns_port = harness.start_dnsmasq(conf_file=d + "/dnsmasq.conf")
  # DNS at 127.0.0.1:dns_port, CA at d/ca.pem, stats at
  # http://127.0.0.1:ports["control"]/stats; p.terminate() stops it.
The script imports https_server.py from its own directory: a Bazel test
takes both as data through //tests/testing:sim_federation_script and runs
$(location //tests/testing:sim_federation.py). dnsmasq changes user: such
tests are tagged "no-sandbox".
"""
import argparse
import asyncio
import base64
import copy
import datetime
import hashlib
import json
import os
import select
import signal
import socket
import ssl
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from https_server import make_pki, make_leaf  # noqa: E402 (the repo's test PKI)

import nacl.signing  # noqa: E402
from signedjson.sign import sign_json  # noqa: E402

DOMAIN = "sim.test"
NOTARY = "notary." + DOMAIN
KEY_ID = "ed25519:sim"
SERVER_PATH = "/_matrix/key/v2/server"
VERSION_PATH = "/_matrix/federation/v1/version"
ALT_KEY_ID = "ed25519:alt"
NEW_KEY_ID = "ed25519:new"
CERT_MODES = ("wrong_name", "expired", "self_signed")
KEY_CHANGES = ("reuse", "vanish", "rotate")
QUERY_PATH = "/_matrix/key/v2/query"
WELL_KNOWN_PATH = "/.well-known/matrix/server"
HOP_PATH = "/hop/"  # the chain mode's redirects: /hop/1, /hop/2, ...
# Names that resolve to addresses the service must never connect to, for
# .well-known redirects and delegations. 0.0.0.0 is refused by the outbound
# filter too, but a connection to it would reach this sim on loopback: a
# canary that is counted here (under its Host) if the filter lets it pass.
INTERNAL_HOSTS = {"metadata." + DOMAIN: "169.254.169.254",
                  "private." + DOMAIN: "10.0.0.1",
                  "zero." + DOMAIN: "0.0.0.0"}
WELL_KNOWN_MODES = ("none", "delegate", "delegate_internal", "loop", "chain",
                    "redirect_metadata", "redirect_private", "redirect_zero",
                    "redirect_ip", "oversized", "slow")
OVERSIZED_BYTES = 1 << 20
MAX_HEADER_BYTES = 64 << 10
MAX_BODY_BYTES = 16 << 20


def server_name(i):
    return "s%d.%s" % (i, DOMAIN)


def signing_key(name):
    """The deterministic key of `name`: seed SHA-256(name), id ed25519:sim."""
    key = nacl.signing.SigningKey(hashlib.sha256(name.encode("utf-8")).digest())
    key.alg, key.version = KEY_ID.split(":")
    return key


def unpadded_b64(data):
    return base64.b64encode(data).decode("ascii").rstrip("=")


def parse_set(text):
    """"0,3,7-9" -> {0, 3, 7, 8, 9}."""
    out = set()
    for part in filter(None, (text or "").split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def sni_of(hello):
    """The server_name of a TLS ClientHello record, "" if it has none, None if
    `hello` is not (yet) a whole ClientHello record."""
    try:
        if len(hello) < 5 or hello[0] != 0x16:
            return "" if hello else None
        end = 5 + int.from_bytes(hello[3:5], "big")
        if len(hello) < end:
            return None
        p = 5 + 4 + 2 + 32  # handshake header, version, random
        p += 1 + hello[p]  # session id
        p += 2 + int.from_bytes(hello[p:p + 2], "big")  # cipher suites
        p += 1 + hello[p]  # compression methods
        ext_end = min(end, p + 2 + int.from_bytes(hello[p:p + 2], "big"))
        p += 2
        while p + 4 <= ext_end:
            kind = int.from_bytes(hello[p:p + 2], "big")
            size = int.from_bytes(hello[p + 2:p + 4], "big")
            p += 4
            if kind == 0:  # server_name: list length, type, name length, name
                name_len = int.from_bytes(hello[p + 3:p + 5], "big")
                return hello[p + 5:p + 5 + name_len].decode("ascii", "replace").lower()
            p += size
        return ""
    except IndexError:
        return ""


class Stats:
    """What the sim saw. Counts of what is open now survive reset(); the
    peaks restart from them."""

    def __init__(self):
        self.open = {"all": 0, "https": 0, "dead": 0}
        self.open_by_host = {}
        self.in_flight = 0
        self.reset()

    def reset(self):
        self.requests = {}
        self.post_batch_sizes = []
        self.peak_in_flight = self.in_flight
        self.accepted = {"https": 0, "dead": 0}
        self.peak = dict(self.open)
        self.peak_by_host = {h: n for h, n in self.open_by_host.items() if n}

    def opened(self, listener):
        for k in ("all", listener):
            self.open[k] += 1
            self.peak[k] = max(self.peak[k], self.open[k])
        self.accepted[listener] += 1

    def closed(self, listener):
        for k in ("all", listener):
            self.open[k] -= 1

    def host_opened(self, host):
        n = self.open_by_host.get(host, 0) + 1
        self.open_by_host[host] = n
        self.peak_by_host[host] = max(self.peak_by_host.get(host, 0), n)

    def host_closed(self, host):
        self.open_by_host[host] -= 1

    def request(self, host, path):
        by_path = self.requests.setdefault(host, {})
        by_path[path] = by_path.get(path, 0) + 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def to_json(self):
        return {
            "requests": self.requests,
            "post_batch_sizes": self.post_batch_sizes,
            "requests_in_flight": self.in_flight,
            "peak_requests_in_flight": self.peak_in_flight,
            "open_connections": self.open["all"],
            "peak_connections": self.peak["all"],
            "open_https_connections": self.open["https"],
            "peak_https_connections": self.peak["https"],
            "accepted_https_connections": self.accepted["https"],
            "open_dead_connections": self.open["dead"],
            "peak_dead_connections": self.peak["dead"],
            "accepted_dead_connections": self.accepted["dead"],
            "open_connections_by_host": {h: n for h, n in self.open_by_host.items() if n},
            "peak_connections_by_host": self.peak_by_host,
        }


class HttpError(Exception):
    pass


async def read_request(reader):
    """(method, target, version, headers, body), or None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise HttpError("truncated request head")
    except asyncio.LimitOverrunError:
        raise HttpError("request head too long")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError("bad request line")
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise HttpError("body too large")
            body += (await reader.readexactly(size + 2))[:-2]
    elif headers.get("content-length"):
        length = int(headers["content-length"])
        if length > MAX_BODY_BYTES:
            raise HttpError("body too large")
        body = await reader.readexactly(length)
    return parts[0], parts[1], parts[2], headers, body


def keep_alive(version, headers):
    conn = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return conn == "keep-alive"
    return conn != "close"


def encode_response(status, body, alive, headers=None):
    """The whole response; `headers`: more of them ({name: value})."""
    reasons = {200: "OK", 302: "Found", 400: "Bad Request", 404: "Not Found",
               405: "Method Not Allowed", 500: "Internal Server Error"}
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    more = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    return ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s"
            "Content-Length: %d\r\nConnection: %s\r\n\r\n" % (
                status, reasons.get(status, "Error"), more, len(payload),
                "keep-alive" if alive else "close")).encode() + payload


async def write_response(writer, status, body, alive, headers=None):
    writer.write(encode_response(status, body, alive, headers))
    await writer.drain()


def matrix_error(errcode, error):
    return {"errcode": errcode, "error": error}


class Sim:
    def __init__(self, args):
        self.n = args.servers
        self.names = [server_name(i) for i in range(self.n)]
        self.known = set(self.names) | {NOTARY}
        self.dead_at_start = {self.name_of(i) for i in parse_set(args.dead)}
        self.dead = set(self.dead_at_start)
        self.slow = {self.name_of(i) for i in parse_set(args.slow)}
        self.delay_ms = args.delay_ms
        self.slow_delay_ms = args.slow_delay_ms
        self.notary_delay_ms = args.notary_delay_ms
        self.pad_old_keys = 0
        self.trickle = set()      # answer one byte a second
        self.notary_lies = set()  # the notary vouches for a key it made up
        self.two_bodies = set()   # one key id, two keys, in one response
        self.valid_for_ms = args.valid_for_ms
        self.legacy_srv = {self.name_of(i) for i in parse_set(args.legacy_srv)}
        self.cname_srv = {self.name_of(i) for i in parse_set(args.cname_srv)}
        self.split_keys = {self.name_of(i) for i in parse_set(args.split_keys)}
        # Servers with A records (127.0.0.1) of their own and of their
        # delegation target m-<label> and loop partner loop-<label>.
        self.well_known_names = {self.name_of(i) for i in parse_set(args.well_known)}
        self.aliases = {}  # m-<label>.sim.test -> the server it is
        self.loop_partners = {}  # loop-<label>.sim.test -> the server
        for name in self.well_known_names:
            label = name.split(".")[0]
            self.aliases["m-%s.%s" % (label, DOMAIN)] = name
            self.loop_partners["loop-%s.%s" % (label, DOMAIN)] = name
        self.well_known = {}  # name -> one of WELL_KNOWN_MODES
        self.https_port = 0
        self.certs = {}       # name -> one of CERT_MODES
        self.valid_for = {}   # name -> ms, instead of valid_for_ms
        self.key_change = {}  # name -> one of KEY_CHANGES
        self.no_version = set()
        self.delays = {}
        self.keys = {}
        self.responses = {}  # name -> (valid_until_ts, own response, notarised)
        self.stats = Stats()
        self.sinks = {}  # fd -> (socket, listener, host or None): never read
        self.sink_epoll = None
        self.tasks = set()

    def name_of(self, server):
        if isinstance(server, str) and server.isdigit():
            server = int(server)  # a JSON object's keys are strings
        name = server_name(server) if isinstance(server, int) else str(server).lower()
        if name not in self.known:
            raise ValueError("no server %r in the sim" % (server,))
        return name

    # --- keys -----------------------------------------------------------

    def key_of(self, name):
        key = self.keys.get(name)
        if key is None:
            key = self.keys[name] = signing_key(name)
        return key

    def signed(self, name, alt=False):
        """(own response, notarised response) of `name`, re-signed once a
        second at most; `alt`: as the alt port serves it (another key)."""
        now_ms = int(time.time() * 1000)
        until = -(-(now_ms + self.valid_for.get(name, self.valid_for_ms)) // 1000) * 1000
        cache_key = (name, alt)
        cached = self.responses.get(cache_key)
        if cached is None or cached[0] != until:
            key = self.key_of(name)
            change = self.key_change.get(name)
            if alt:
                key = signing_key("alt " + name)
                key.alg, key.version = ALT_KEY_ID.split(":")
            elif change in ("reuse",):
                key = signing_key("reused " + name)  # same key id, another key
            elif change in ("vanish", "rotate"):
                key = signing_key("new " + name)
                key.alg, key.version = NEW_KEY_ID.split(":")
            key_id = "%s:%s" % (key.alg, key.version)
            # Padding: old keys that never signed anything (a hostile peer
            # making us keep more), pad_old_keys of them per response.
            old = {"ed25519:pad%d" % i: {
                "key": unpadded_b64(hashlib.sha256(b"%s %d" % (name.encode(), i)).digest()),
                "expired_ts": 1000 + i} for i in range(self.pad_old_keys)}
            if name in self.two_bodies:
                old[KEY_ID] = {"key": unpadded_b64(hashlib.sha256(name.encode()).digest()[::-1]),
                               "expired_ts": 1000}
            if change == "rotate" and not alt:
                old[KEY_ID] = {"key": unpadded_b64(bytes(self.key_of(name).verify_key)),
                               "expired_ts": now_ms - 1000}
            own = sign_json({"server_name": name, "valid_until_ts": until,
                             "verify_keys": {key_id: {"key": unpadded_b64(
                                 bytes(key.verify_key))}},
                             "old_verify_keys": old}, name, key)
            vouched = own
            if name in self.notary_lies:
                # A response the notary made up: its own key under the
                # server's key id, self-signed with it, and vouched for.
                fake = signing_key("fake " + name)
                vouched = sign_json({"server_name": name, "valid_until_ts": until,
                                     "verify_keys": {KEY_ID: {"key": unpadded_b64(
                                         bytes(fake.verify_key))}},
                                     "old_verify_keys": {}}, name, fake)
            notarised = sign_json(copy.deepcopy(vouched), NOTARY, self.key_of(NOTARY))
            cached = self.responses[cache_key] = (until, own, notarised)
        return cached[1], cached[2]

    def delay_of(self, name):
        if name == NOTARY:
            return self.notary_delay_ms
        if name in self.delays:
            return self.delays[name]
        return self.slow_delay_ms if name in self.slow else self.delay_ms

    # --- control --------------------------------------------------------

    def config_json(self):
        return {"servers": self.n, "delay_ms": self.delay_ms,
                "slow_delay_ms": self.slow_delay_ms,
                "notary_delay_ms": self.notary_delay_ms,
                "valid_for_ms": self.valid_for_ms, "delays": self.delays,
                "pad_old_keys": self.pad_old_keys, "trickle": sorted(self.trickle),
                "notary_lies": sorted(self.notary_lies), "two_bodies": sorted(self.two_bodies),
                "certs": self.certs, "valid_for": self.valid_for,
                "key_change": self.key_change, "no_version": sorted(self.no_version),
                "legacy_srv": sorted(self.legacy_srv), "cname_srv": sorted(self.cname_srv),
                "split_keys": sorted(self.split_keys),
                "well_known": self.well_known,
                "well_known_names": sorted(self.well_known_names),
                "slow": sorted(self.slow), "dead": sorted(self.dead),
                "dead_at_start": sorted(self.dead_at_start)}

    def configure(self, c):
        if not isinstance(c, dict):
            raise ValueError("the configuration is a JSON object")
        unknown = set(c) - {"delay_ms", "slow_delay_ms", "notary_delay_ms",
                            "valid_for_ms", "delays", "slow", "dead", "pad_old_keys",
                            "trickle", "notary_lies", "two_bodies", "certs", "valid_for",
                            "key_change", "no_version", "well_known"}
        if unknown:
            raise ValueError("unknown settings: %s" % ", ".join(sorted(unknown)))
        for k in ("delay_ms", "slow_delay_ms", "notary_delay_ms", "valid_for_ms", "pad_old_keys"):
            if k in c and (not isinstance(c[k], int) or c[k] < 0):
                raise ValueError("%s must be a non-negative integer" % k)
        delays = self.delays
        if "delays" in c:
            delays = {self.name_of(k): v for k, v in c["delays"].items()}
            if any(not isinstance(v, int) or v < 0 for v in delays.values()):
                raise ValueError("delays are non-negative integers")
        for k in ("trickle", "notary_lies", "two_bodies"):
            if k in c:
                setattr(self, k, {self.name_of(x) for x in c[k]})
                self.responses = {}  # signed again
        certs = self.certs
        if "certs" in c:
            certs = {self.name_of(k): v for k, v in c["certs"].items()}
            if any(v not in CERT_MODES for v in certs.values()):
                raise ValueError("certs are one of %s" % ", ".join(CERT_MODES))
        valid_for = self.valid_for
        if "valid_for" in c:
            valid_for = {self.name_of(k): v for k, v in c["valid_for"].items()}
            if any(not isinstance(v, int) for v in valid_for.values()):
                raise ValueError("valid_for values are integers (ms)")
        key_change = self.key_change
        if "key_change" in c:
            key_change = {self.name_of(k): v for k, v in c["key_change"].items()}
            if any(v not in KEY_CHANGES for v in key_change.values()):
                raise ValueError("key_change values are one of %s" % ", ".join(KEY_CHANGES))
        if "no_version" in c:
            self.no_version = {self.name_of(x) for x in c["no_version"]}
        well_known = self.well_known
        if "well_known" in c:
            well_known = {self.name_of(k): v for k, v in c["well_known"].items()}
            if any(v not in WELL_KNOWN_MODES for v in well_known.values()):
                raise ValueError("well_known values are one of %s" % ", ".join(WELL_KNOWN_MODES))
            if set(well_known) - self.well_known_names:
                raise ValueError("servers without A records (start them with --well-known): %s"
                                 % ", ".join(sorted(set(well_known) - self.well_known_names)))
        if "valid_for" in c or "key_change" in c:
            self.responses = {}  # signed again
        self.certs, self.valid_for, self.key_change = certs, valid_for, key_change
        self.well_known = well_known
        slow = {self.name_of(s) for s in c["slow"]} if "slow" in c else self.slow
        dead = {self.name_of(s) for s in c["dead"]} if "dead" in c else self.dead
        for k in ("delay_ms", "slow_delay_ms", "notary_delay_ms", "valid_for_ms", "pad_old_keys"):
            if k in c:
                setattr(self, k, c[k])
        if "pad_old_keys" in c:
            self.responses = {}  # signed again, padded or not
        self.delays, self.slow, self.dead = delays, slow, dead

    async def control(self, method, path, body):
        if (method, path) == ("GET", "/stats"):
            self.sweep_sinks()
            return 200, self.stats.to_json()
        if (method, path) == ("POST", "/reset"):
            self.sweep_sinks()
            self.stats.reset()
            return 200, {}
        if (method, path) == ("GET", "/config"):
            return 200, self.config_json()
        if (method, path) == ("POST", "/config"):
            try:
                self.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError, AttributeError) as e:
                return 400, matrix_error("M_BAD_JSON", str(e))
            return 200, self.config_json()
        return 404, matrix_error("M_UNRECOGNIZED", "no such control endpoint")

    # --- Matrix endpoints -----------------------------------------------

    async def matrix(self, host, method, path, query, body, alt=False):
        if host not in self.known:
            return 404, matrix_error("M_NOT_FOUND", "no server %s here" % host)
        # The answer is built first and sent once the server's delay has
        # passed since the request came in: a delay stands for the network,
        # so building a large notary answer must not add to it.
        start = time.monotonic()
        status, answer = self.answer(host, method, path, body, alt)
        answer = json.dumps(answer).encode()
        await asyncio.sleep(max(0.0, self.delay_of(host) / 1000.0 - (time.monotonic() - start)))
        return status, answer

    def answer(self, host, method, path, body, alt=False):
        if path == SERVER_PATH:
            if method != "GET":
                return 405, matrix_error("M_UNRECOGNIZED", "use GET")
            return 200, self.signed(host, alt)[0]
        if path == VERSION_PATH and host not in self.no_version:
            return 200, {"server": {"name": "sim_federation", "version": "1.0"}}
        if host == NOTARY and path == QUERY_PATH:
            if method != "POST":
                return 405, matrix_error("M_UNRECOGNIZED", "use POST")
            try:
                wanted = json.loads(body)["server_keys"]
                if not isinstance(wanted, dict):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return 400, matrix_error("M_BAD_JSON", "expected {\"server_keys\": {...}}")
            return 200, {"server_keys": [self.signed(s)[1] for s in wanted
                                         if s in self.known]}
        if host == NOTARY and path.startswith(QUERY_PATH + "/"):
            if method != "GET":
                return 405, matrix_error("M_UNRECOGNIZED", "use GET")
            name = path[len(QUERY_PATH) + 1:].split("/")[0].lower()
            return 200, {"server_keys": [self.signed(name)[1]] if name in self.known else []}
        return 404, matrix_error("M_UNRECOGNIZED", "unrecognized request")

    # --- .well-known -----------------------------------------------------

    def well_known_answer(self, host, path):
        """(status, body, extra) for a .well-known request (or a hop of a
        redirect chain) to `host`, or None when `host` serves no .well-known
        (then the request is a Matrix one). extra: {"headers": {...}} and
        "slow" (the body goes one byte a second)."""
        port = self.https_port

        def redirect(url):
            return 302, b"", {"headers": {"Location": url}}

        def url(h, p=WELL_KNOWN_PATH):
            return "https://%s:%d%s" % (h, port, p)

        if host in self.loop_partners:  # always back where it came from
            if path != WELL_KNOWN_PATH:
                return None
            return redirect(url(self.loop_partners[host]))
        if host in INTERNAL_HOSTS:  # reached only if the filter failed
            return 404, matrix_error("M_NOT_FOUND", "an internal address"), {}
        if host not in self.well_known_names:
            return None
        mode = self.well_known.get(host, "none")
        if path.startswith(HOP_PATH) and mode == "chain":
            try:
                n = int(path[len(HOP_PATH):])
            except ValueError:
                return None
            return redirect(url(host, "%s%d" % (HOP_PATH, n + 1)))
        if path != WELL_KNOWN_PATH:
            return None
        label = host.split(".")[0]
        delegation = {"m.server": "m-%s.%s:%d" % (label, DOMAIN, port)}
        if mode == "none":
            return 404, matrix_error("M_UNRECOGNIZED", "no delegation"), {}
        if mode == "delegate":
            return 200, delegation, {}
        if mode == "delegate_internal":
            return 200, {"m.server": "metadata.%s:%d" % (DOMAIN, port)}, {}
        if mode == "loop":
            return redirect(url("loop-%s.%s" % (label, DOMAIN)))
        if mode == "chain":
            return redirect(url(host, HOP_PATH + "1"))
        if mode.startswith("redirect_") and mode != "redirect_ip":
            return redirect(url("%s.%s" % ({"redirect_metadata": "metadata",
                                             "redirect_private": "private",
                                             "redirect_zero": "zero"}[mode], DOMAIN)))
        if mode == "redirect_ip":
            return redirect(url(INTERNAL_HOSTS["private." + DOMAIN]))
        if mode == "oversized":
            body = dict(delegation, padding="x" * OVERSIZED_BYTES)
            return 200, body, {}
        if mode == "slow":
            return 200, delegation, {"slow": True}
        raise ValueError("unknown .well-known mode " + mode)

    # --- connections ----------------------------------------------------

    async def serve_http(self, reader, writer, handler, conn):
        """HTTP/1.1 with keep-alive; `conn` is the connection's host label
        holder for the https port (None for the control port)."""
        try:
            while True:
                try:
                    req = await read_request(reader)
                except (HttpError, ValueError) as e:
                    await write_response(writer, 400, matrix_error("M_UNKNOWN", str(e)), False)
                    return
                if req is None:
                    return
                method, target, version, headers, body = req
                path, _, query = target.partition("?")
                alive = keep_alive(version, headers)
                extra = {}
                try:
                    status, answer, *more = await handler(method, path, query, headers, body,
                                                          conn)
                    extra = more[0] if more else {}
                except Exception:  # noqa: BLE001 (a bug here must not end the sim)
                    traceback.print_exc()
                    status, answer = 500, matrix_error("M_UNKNOWN", "sim_federation failed")
                if extra.get("slow"):
                    # The head at once, then the body one byte a second,
                    # until the client gives up.
                    raw = encode_response(status, answer, False, extra.get("headers"))
                    head_end = raw.index(b"\r\n\r\n") + 4
                    writer.write(raw[:head_end])
                    await writer.drain()
                    for byte in raw[head_end:]:
                        await asyncio.sleep(1)
                        writer.write(bytes([byte]))
                        await writer.drain()
                    return
                if conn is not None and conn.get("host") in self.trickle:
                    # One byte a second, until the client gives up.
                    for byte in encode_response(status, answer, False):
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(1)
                    return
                await write_response(writer, status, answer, alive, extra.get("headers"))
                if not alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                OSError):
            pass
        finally:
            writer.close()

    async def https_request(self, method, path, query, headers, body, conn):
        host = headers.get("host", "").lower()
        if host.startswith("["):
            host = host.split("]")[0] + "]"
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        host = host or conn["host"] or ""
        if conn["host"] is None:
            conn["host"] = host
            self.stats.host_opened(host)
        self.stats.request(host, path)
        if method == "POST" and host == NOTARY and path == QUERY_PATH:
            try:
                self.stats.post_batch_sizes.append(len(json.loads(body)["server_keys"]))
            except (ValueError, KeyError, TypeError):
                self.stats.post_batch_sizes.append(-1)
        try:
            if method == "GET":
                answer = self.well_known_answer(host, path)
                if answer is not None:
                    return answer
            # A delegation target serves as the server it stands for.
            return await self.matrix(self.aliases.get(host, host), method, path, query, body,
                                     conn.get("alt", False))
        finally:
            self.stats.in_flight -= 1

    async def control_request(self, method, path, query, headers, body, conn):
        return await self.control(method, path, body)

    def sink(self, sock, listener, host):
        """Keeps `sock` open without reading it until the peer goes away:
        epoll's EPOLLRDHUP sees the FIN (or a reset) even behind unread
        data, and the loop watches the epoll descriptor."""
        if self.sink_epoll is None:
            self.sink_epoll = select.epoll()
            asyncio.get_running_loop().add_reader(self.sink_epoll.fileno(), self.sweep_sinks)
        self.sink_epoll.register(sock.fileno(), select.EPOLLRDHUP)
        self.sinks[sock.fileno()] = (sock, listener, host)

    def sweep_sinks(self):
        """Forgets sunk sockets whose peer closed or reset."""
        if self.sink_epoll is None:
            return
        for fd, _ in self.sink_epoll.poll(0):
            sock, listener, host = self.sinks.pop(fd)
            self.sink_epoll.unregister(fd)
            sock.close()
            self.stats.closed(listener)
            if host is not None:
                self.stats.host_closed(host)

    async def peek_sni(self, sock):
        """The ClientHello's SNI, peeked (left unread), "" if it has none,
        None if the peer closed first."""
        loop = asyncio.get_running_loop()
        while True:
            ready = loop.create_future()
            loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
            try:
                data = sock.recv(16384, socket.MSG_PEEK)
            except BlockingIOError:
                continue
            if not data:
                return None
            sni = sni_of(data)
            if sni is not None or len(data) >= 16384:
                return sni or ""
            await asyncio.sleep(0.005)  # the rest of the ClientHello is on its way

    async def https_connection(self, sock, ctx, alt=False):
        loop = asyncio.get_running_loop()
        conn = {"host": None, "alt": alt}
        owner = "us"  # who closes `sock`: us, the sink, or the transport
        try:
            sni = await asyncio.wait_for(self.peek_sni(sock), 60)
            if sni is None:
                return
            if sni:
                conn["host"] = sni
                self.stats.host_opened(sni)
            if sni in self.dead:
                self.sink(sock, "https", sni)
                owner = "sink"
                return
            reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES, loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            owner = "transport"  # also when the handshake fails
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, sock=sock, ssl=ctx, ssl_handshake_timeout=60)
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            await self.serve_http(reader, writer, self.https_request, conn)
            await asyncio.wait_for(writer.wait_closed(), 35)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            if owner == "us":
                sock.close()
            if owner != "sink":
                self.stats.closed("https")
                if conn["host"] is not None:
                    self.stats.host_closed(conn["host"])

    async def control_connection(self, reader, writer):
        await self.serve_http(reader, writer, self.control_request, None)

    async def accept_loop(self, lsock, listener, ctx, alt=False):
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(lsock)
            sock.setblocking(False)
            if listener == "dead":
                self.sweep_sinks()  # so that the peak counts only open ones
                self.stats.opened("dead")
                self.sink(sock, "dead", None)
                continue
            self.stats.opened("https")
            task = asyncio.ensure_future(self.https_connection(sock, ctx, alt))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


def bad_certificates(directory, ca):
    """{mode: (cert path, key path)}: a leaf of the sim's CA for another name,
    an expired leaf of the sim's CA for the right names, and a self-signed
    leaf for the right names."""
    names = [DOMAIN, "*." + DOMAIN]
    day = datetime.timedelta(days=1)
    now = datetime.datetime.now(datetime.timezone.utc)
    out = {}
    for mode, leaf_names, issuer, start, end in (
            ("wrong_name", ["other.test"], ca, now - day, now + 30 * day),
            ("expired", names, ca, now - 30 * day, now - 2 * day),
            ("self_signed", names, None, now - day, now + 30 * day)):
        out[mode] = make_leaf(directory, "bad-" + mode, leaf_names, issuer, start, end)
    return out


def write_dnsmasq_conf(path, sim, https_port, dead_port, alt_port):
    lines = ["local=/%s/" % DOMAIN, "host-record=live.%s,127.0.0.1" % DOMAIN,
             "host-record=dead.%s,127.0.0.1" % DOMAIN,
             "cname=alias.%s,live.%s" % (DOMAIN, DOMAIN)]
    for name in sorted(sim.well_known_names):
        label = name.split(".")[0]
        for host in (name, "m-%s.%s" % (label, DOMAIN), "loop-%s.%s" % (label, DOMAIN)):
            lines.append("host-record=%s,127.0.0.1" % host)
    if sim.well_known_names:
        for host, address in sorted(INTERNAL_HOSTS.items()):
            lines.append("host-record=%s,%s" % (host, address))
    for name in sim.names + [NOTARY]:
        target, port = (("dead", dead_port) if name in sim.dead_at_start
                        else ("live", https_port))
        if name in sim.cname_srv:
            target = "alias"
        service = "_matrix._tcp" if name in sim.legacy_srv else "_matrix-fed._tcp"
        lines.append("srv-host=%s.%s,%s.%s,%d,0,0" % (service, name, target, DOMAIN, port))
        if name in sim.split_keys:  # tried second (priority 1)
            lines.append("srv-host=%s.%s,live.%s,%d,1,0" % (service, name, DOMAIN, alt_port))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4096)
    s.setblocking(False)
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True, help="for ca.pem, server.pem/.key, dnsmasq.conf")
    p.add_argument("--servers", type=int, default=10)
    p.add_argument("--dead", default="", help="indices: 0,3,7-9")
    p.add_argument("--slow", default="", help="indices of slow live servers")
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--slow-delay-ms", type=int, default=10000)
    p.add_argument("--notary-delay-ms", type=int, default=0)
    p.add_argument("--valid-for-ms", type=int, default=86400000)
    p.add_argument("--legacy-srv", default="", help="indices with only _matrix._tcp SRV")
    p.add_argument("--cname-srv", default="", help="indices whose SRV target is a CNAME")
    p.add_argument("--split-keys", default="",
                   help="indices with a second SRV record to the alt port (another key)")
    p.add_argument("--well-known", default="",
                   help="indices that get A records and serve .well-known (POST /config)")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    args = p.parse_args()

    sim = Sim(args)
    ca_out = []
    cert, key = make_pki(args.dir, [DOMAIN, "*." + DOMAIN], ca_out=ca_out)

    def context(cert, key):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.minimum_version = ssl.TLSVersion.TLSv1_2
        c.load_cert_chain(cert, key)
        return c
    ctx = context(cert, key)
    # The broken certificates a server's SNI can be given (POST /config "certs").
    bad = {mode: context(*paths) for mode, paths in
           bad_certificates(args.dir, ca_out[0]).items()}

    def by_sni(sslobj, sni, _):
        mode = sim.certs.get((sni or "").lower())
        if mode is not None:
            sslobj.context = bad[mode]
    ctx.sni_callback = by_sni

    https, dead, alt = listener(), listener(), listener()
    https_port, dead_port = https.getsockname()[1], dead.getsockname()[1]
    alt_port = alt.getsockname()[1]
    sim.https_port = https_port
    write_dnsmasq_conf(os.path.join(args.dir, "dnsmasq.conf"), sim, https_port, dead_port,
                       alt_port)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stopped = loop.create_future()

    def stop(*_):
        if not stopped.done():
            stopped.set_result(None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    if args.exit_on_stdin_eof:
        def on_stdin():
            try:
                if not os.read(0, 4096):
                    loop.remove_reader(0)
                    stop()
            except OSError:
                loop.remove_reader(0)
                stop()
        loop.add_reader(0, on_stdin)

    async def run():
        control = await asyncio.start_server(sim.control_connection, "127.0.0.1", 0)
        loops = [asyncio.ensure_future(sim.accept_loop(https, "https", ctx)),
                 asyncio.ensure_future(sim.accept_loop(dead, "dead", None)),
                 asyncio.ensure_future(sim.accept_loop(alt, "https", ctx, alt=True))]
        ports = "PORTS https=%d dead=%d control=%d alt=%d" % (
            https_port, dead_port, control.sockets[0].getsockname()[1], alt_port)
        print(ports, flush=True)
        await stopped
        for t in loops:
            t.cancel()
        control.close()

    loop.run_until_complete(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
