#!/usr/bin/python3
"""Many replicas (a benchmark, not a test): keyverifier processes sharing one
PostgreSQL on this machine, against one process alone in the same run.

Real parts on loopback, started through tests/integration/harness.py: a
throwaway PostgreSQL, the simulated federation behind its dnsmasq, the
service binary (as many processes as asked for, one config).

Warm (tests/bench/loadgen.cc --targets, 32 calls in flight in all, spread
round-robin over the targets; cached VerifyServerKeys of one simulated
server and unary VerifyEventSignature of an event it signed; the processes
fetch its keys once, through the store's leases):

  1. one process on PostgreSQL, alone: --rounds rounds;
  2. two more processes on the same database, the same total load spread
     over the three: --rounds rounds; each round also sends the load to the
     first process alone (the other two idle), alternating which goes first.

Reported: medians of the rounds; each process's calls/s and the total over
the three against the one process alone in step 1 (per process, total), and
against the first process alone in the same rounds of step 2.

Cold (--cold_runs times, on servers never seen before): --servers
simulated servers, --dead_percent of them dead (they accept TCP and never
answer), the live ones answering after --delay_ms; a VerifyServerKeys of
every server sent to each of the three processes at once. Reported: the
origin requests per live server counted at the simulated federation (the
target is exactly 1 for every one), connections to the dead servers, how
the fetches were spread over the processes, and the wall time.

Also printed: the CPU (/proc/cpuinfo) and how busy the machine was before
and after (CPU in use by everything, from /proc/stat, before anything here
started and after everything stopped).

Usage (bazel run -c opt //tests/bench:replicas_bench -- [options]):
  replicas_bench.py KEYVERIFIER LOADGEN SIM_FEDERATION_PY STUB_FILE...
      [--replicas N] [--rounds N] [--seconds S] [--in_flight N]
      [--servers N] [--dead_percent P] [--delay_ms MS] [--cold_runs N]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time

# tests/integration/harness.py: next to this file's directory in the source
# tree and in a test's runfiles; under `bazel run`, in the runfiles the
# binary runs in.
for _base in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
              os.path.join(os.environ.get("RUNFILES_DIR", os.getcwd()), "tests"),
              os.path.join(os.getcwd(), "tests")):
    if os.path.exists(os.path.join(_base, "integration", "harness.py")):
        sys.path.insert(0, os.path.join(_base, "integration"))
        break
import harness  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("keyverifier")
    p.add_argument("loadgen")
    p.add_argument("sim_script")
    p.add_argument("stubs", nargs="+", help="the generated Python gRPC stubs")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--in_flight", type=int, default=32)
    p.add_argument("--servers", type=int, default=1000, help="cold servers per cold run")
    p.add_argument("--dead_percent", type=int, default=10)
    p.add_argument("--delay_ms", type=int, default=100)
    p.add_argument("--cold_runs", type=int, default=3)
    p.add_argument("--new_servers_burst", type=int, default=0,
                   help="fetch.new_servers_burst of every process (0: enough for every cold run)")
    p.add_argument("--only", choices=("warm", "cold"), help="one part")
    return p.parse_args()


ARGS = parse_args()
harness.use_service_stubs(ARGS.stubs[0])
import grpc  # noqa: E402
from keyverifier.v1 import service_pb2, service_pb2_grpc  # noqa: E402


def name(i):
    return "s%d.sim.test" % i


def median(values):
    """The middle value (the upper one of an even count), as measure.cc's."""
    v = sorted(values)
    return v[len(v) // 2] if v else 0.0


# --- the machine --------------------------------------------------------------

def cpu_kind():
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                k, v = (x.strip() for x in line.split(":", 1))
                info.setdefault(k, v)
    flags = set(info.get("flags", "").split())
    features = [label for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2"),
                                          ("sha_ni", "SHA-NI")) if flag in flags]
    return "%s (family %s, model %s), %d CPUs, %s%s" % (
        info.get("model name", "unknown"), info.get("cpu family", "?"), info.get("model", "?"),
        os.cpu_count(), ", ".join(features) or "no AVX2",
        ", hypervisor" if "hypervisor" in flags else "")


def cpu_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def machine_busy(seconds=3.0):
    """CPUs in use by everything on the machine over `seconds`, and the load
    average."""
    b0, t0 = cpu_ticks()
    time.sleep(seconds)
    b1, t1 = cpu_ticks()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return (b1 - b0) / max(1, t1 - t0) * os.cpu_count(), load


# --- warm: the load generator --------------------------------------------------

def loadgen(targets, warm_server, alone=None):
    args = [ARGS.loadgen, "--targets", ",".join(targets), "--event_server", warm_server,
            "--rounds", str(ARGS.rounds), "--seconds", str(ARGS.seconds),
            "--in_flight", str(ARGS.in_flight), "--json"]
    if alone:
        args += ["--alone", alone]
    out = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=True).stdout
    result = None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        else:
            print("  | " + line)
    sys.stdout.flush()
    if result is None:
        raise RuntimeError("the load generator gave no result")
    return result


def warm(sim, replicas, warm_server):
    """Step 1 with replicas[0] alone, step 2 with all of them."""
    first = "127.0.0.1:%d" % replicas[0].port
    print("\n== step 1: one process alone on PostgreSQL (%s)" % first)
    alone = loadgen([first], warm_server)
    for r in replicas[1:]:
        r.start()
    targets = ["127.0.0.1:%d" % r.port for r in replicas]
    print("\n== step 2: %d processes on the same PostgreSQL (%s)" % (len(replicas),
                                                                      ", ".join(targets)))
    spread = loadgen(targets, warm_server, alone=first)

    lines = ["", "== warm: medians of %d rounds of %g s, %d calls in flight in all"
             % (ARGS.rounds, ARGS.seconds, ARGS.in_flight)]
    n = len(replicas)
    for group, label in (("keys", "cached VerifyServerKeys"), ("unary", "unary VerifyEventSignature")):
        one = [r["total"]["calls_per_s"] for r in alone[group]]
        one_p99 = [r["total"]["p99_ms"] for r in alone[group]]
        total = [r["total"]["calls_per_s"] for r in spread[group]]
        total_p99 = [r["total"]["p99_ms"] for r in spread[group]]
        per = [[r["targets"][k]["calls_per_s"] for r in spread[group]] for k in range(n)]
        same_alone = [r["alone"]["calls_per_s"] for r in spread[group]]
        same_ratio = [t / a for t, a in zip(total, same_alone)]
        lines.append("%s:" % label)
        lines.append("  one process alone (step 1):      %8.0f calls/s, p99 %.2f ms"
                     % (median(one), median(one_p99)))
        lines.append("  %d processes, total (step 2):     %8.0f calls/s, p99 %.2f ms"
                     % (n, median(total), median(total_p99)))
        lines.append("  each process (step 2):           %s calls/s"
                     % ", ".join("%.0f" % median(p) for p in per))
        lines.append("  per-process ratio (each / alone): %s; mean %.3f"
                     % (", ".join("%.3f" % (median(p) / median(one)) for p in per),
                        median(total) / n / median(one)))
        lines.append("  total ratio (%d processes / one alone): %.3f"
                     % (n, median(total) / median(one)))
        lines.append("  same rounds, first process alone with the others idle: %.0f calls/s;"
                     " total / it = %.3f (median of the rounds' ratios)"
                     % (median(same_alone), median(same_ratio)))
    lines.append("origin requests for %s (the warm server): %d"
                 % (warm_server, sim.key_requests(warm_server)))
    return lines


# --- cold: every server looked up at every process at once --------------------

FETCH_METRIC = "keyverifier_key_fetches_total"


def fetch_counts(replica):
    """{labels: count} of the fetch counter in a scrape."""
    out = {}
    for line in replica.metrics().splitlines():
        if line.startswith(FETCH_METRIC + "{"):
            labels, value = line[len(FETCH_METRIC):].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def cold_run(sim, replicas, first, count, dead):
    sim.control("/reset", {})
    before = [fetch_counts(r) for r in replicas]
    done_at = {}
    outcomes = collections.Counter()
    lock = threading.Lock()
    finished = threading.Event()
    expected = count * len(replicas)

    def on_done(i, k, future):
        now = time.monotonic()
        try:
            answer = future.result()
            outcome = "ok" if answer.server_name == name(i) else "wrong server"
        except grpc.RpcError as e:
            outcome = e.code().name
        with lock:
            done_at[(i, k)] = now
            outcomes[("dead" if i in dead else "live", outcome)] += 1
            if len(done_at) == expected:
                finished.set()

    futures = []
    t0 = time.monotonic()
    for i in range(first, first + count):
        request = service_pb2.VerifyServerKeysRequest(server_name=name(i))
        for k, r in enumerate(replicas):
            f = r.stub.VerifyServerKeys.future(request, timeout=60)
            f.add_done_callback(lambda fut, i=i, k=k: on_done(i, k, fut))
            futures.append(f)
    sent = time.monotonic() - t0
    if not finished.wait(120):
        raise RuntimeError("cold lookups still unanswered after 120 s")
    wall = max(done_at.values()) - t0
    live = sorted(t - t0 for (i, _), t in done_at.items() if i not in dead)
    live_wall = live[-1]
    live_p50, live_p90 = live[len(live) // 2], live[len(live) * 9 // 10]
    stats = sim.stats()
    per_live = collections.Counter(sim.key_requests(name(i), stats)
                                   for i in range(first, first + count) if i not in dead)
    after = [fetch_counts(r) for r in replicas]
    spread = []
    for b, a in zip(before, after):
        delta = {k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0)}
        spread.append(delta)
    return {"wall": wall, "live_wall": live_wall, "live_p50": live_p50, "live_p90": live_p90,
            "sent": sent, "outcomes": outcomes,
            "per_live": per_live, "dead_connections": stats["accepted_dead_connections"],
            "spread": spread}


def cold(sim, replicas, dead):
    sim.control("/config", {"delay_ms": ARGS.delay_ms})
    runs = []
    for run in range(ARGS.cold_runs):
        first = run * ARGS.servers
        n_dead = len([i for i in dead if first <= i < first + ARGS.servers])
        print("\n== cold run %d: s%d..s%d.sim.test (%d dead), every one looked up at each of "
              "the %d processes at once" % (run + 1, first, first + ARGS.servers - 1, n_dead,
                                            len(replicas)))
        r = cold_run(sim, replicas, first, ARGS.servers, dead)
        runs.append(r)
        print("  %d lookups sent in %.2f s; all answered after %.2f s; the live servers' after"
              " %.2f s (half of them after %.2f s, 90%% after %.2f s)"
              % (ARGS.servers * len(replicas), r["sent"], r["wall"], r["live_wall"],
                 r["live_p50"], r["live_p90"]))
        print("  answers: %s" % ", ".join("%s %s: %d" % (kind, outcome, n) for (kind, outcome), n
                                         in sorted(r["outcomes"].items())))
        print("  origin requests per live server: %s" % ", ".join(
            "%d request(s): %d servers" % (k, v) for k, v in sorted(r["per_live"].items())))
        print("  connections accepted for the %d dead servers: %d"
              % (n_dead, r["dead_connections"]))
        for k, delta in enumerate(r["spread"]):
            print("  process %d fetches: %s" % (k + 1, ", ".join(
                "%s %d" % (labels, v) for labels, v in sorted(delta.items())) or "none"))
    lines = ["", "== cold: %d runs, %d servers each (%d%% dead, live ones answering after %d ms),"
             " each looked up at all %d processes at once"
             % (len(runs), ARGS.servers, ARGS.dead_percent, ARGS.delay_ms, len(replicas))]
    exactly_one = all(set(r["per_live"]) == {1} for r in runs)
    lines.append("  origin requests per live server: %s in every run%s" % (
        "exactly 1" if exactly_one else "NOT always 1",
        "" if exactly_one else ": " + "; ".join(str(dict(r["per_live"])) for r in runs)))
    lines.append("  wall time, all answered: %s s (median %.2f s)"
                 % (", ".join("%.2f" % r["wall"] for r in runs), median([r["wall"] for r in runs])))
    lines.append("  live servers' lookups answered (medians of the runs): all %.2f s, half %.2f s,"
                 " 90%% %.2f s" % (median([r["live_wall"] for r in runs]),
                                   median([r["live_p50"] for r in runs]),
                                   median([r["live_p90"] for r in runs])))
    lines.append("  answers: %s" % "; ".join(", ".join("%s %s: %d" % (kind, outcome, n) for
                                                      (kind, outcome), n in sorted(r["outcomes"].items()))
                                            for r in runs))
    lines.append("  connections to the dead servers per run: %s (for %d dead servers each)"
                 % (", ".join(str(r["dead_connections"]) for r in runs),
                    ARGS.servers * ARGS.dead_percent // 100))
    return lines


def main():
    print("CPU: " + cpu_kind())
    busy, load = machine_busy()
    print("machine before starting: %.2f of %d CPUs busy, load average %s"
          % (busy, os.cpu_count(), load))
    n_sim = ARGS.cold_runs * ARGS.servers + 1
    warm_server = name(n_sim - 1)  # never among the cold ones
    dead = set()
    for run in range(ARGS.cold_runs):
        first = run * ARGS.servers
        dead.update(first + j for j in range(ARGS.servers)
                    if (j * ARGS.dead_percent) // 100 != ((j + 1) * ARGS.dead_percent) // 100)
    summary = ["", "==== summary", "CPU: " + cpu_kind(),
               "machine before starting: %.2f of %d CPUs busy, load average %s"
               % (busy, os.cpu_count(), load)]
    try:
        pg = harness.Postgres()
        sim = harness.SimFederation(ARGS.sim_script, n_sim,
                                    dead=",".join(str(i) for i in sorted(dead)))
        budget_ms = 6000
        config = "\n".join([
            'store { kind: postgres postgres: "%s" }' % pg.conninfo(),
            'dns { servers: "127.0.0.1:%s" }' % sim.ports["dns"],
            'outbound { allowed: "127.0.0.0/8" }',
            'federation_tls { ca_mode: replace ca_files: "%s" }' % sim.ca,
            'fetch { order: direct_only connect_timeout_ms: 2000 tls_handshake_timeout_ms: 2000'
            ' request_timeout_ms: 4000 budget_ms: %d well_known_port: %d'
            ' new_servers_burst: %d }' % (budget_ms, harness.free_port(),
                                          ARGS.new_servers_burst or n_sim + 100),
        ]) + "\n"
        print("config of every process:\n  " + config.strip().replace("\n", "\n  "))

        def replica():
            kv = harness.Keyverifier(ARGS.keyverifier, config, harness.tmpdir("data"))
            kv.stub = None
            return kv
        replicas = [replica() for _ in range(ARGS.replicas)]
        replicas[0].start()
        if ARGS.only != "cold":
            summary += warm(sim, replicas, warm_server)
        for r in replicas:
            if r.proc is None:
                r.start()
            r.stub = service_pb2_grpc.KeyVerifierStub(grpc.insecure_channel(
                "127.0.0.1:%d" % r.port, options=[("grpc.max_concurrent_streams", 4000)]))
        if ARGS.only != "warm":
            summary += cold(sim, replicas, dead)
    finally:
        harness.stop_all()
    busy, load = machine_busy()
    summary.append("machine after stopping: %.2f of %d CPUs busy, load average %s"
                   % (busy, os.cpu_count(), load))
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
