#!/usr/bin/env bash
# Starts the real keyverifier binary on a loopback port chosen by the kernel,
# checks the gRPC health service answers SERVING, then sends SIGTERM and checks
# the process drains and exits cleanly.
set -euo pipefail

bin="$1"
health="$2"
log="${TEST_TMPDIR:-/tmp}/keyverifier.log"

"$bin" --listen 127.0.0.1:0 --grace_seconds 2 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*serving on .*(port \([0-9]*\)).*/\1/p' "$log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "service did not report a port"; cat "$log"; exit 1; }

status=$(/usr/bin/python3 "$health" "127.0.0.1:$port")
echo "health: $status"
[ "$status" = "SERVING" ] || { echo "expected SERVING"; exit 1; }

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
trap - EXIT
[ "$rc" -eq 0 ] || { echo "exit code $rc after SIGTERM"; cat "$log"; exit 1; }
grep -q '"msg":"stopped"' "$log" || { echo "no clean stop logged"; cat "$log"; exit 1; }
grep -q 'draining' "$log" || { echo "no drain logged"; cat "$log"; exit 1; }
echo "ok: started, SERVING, drained on SIGTERM"
