#!/usr/bin/env bash
# The configuration file the ConfigMap ships is one the service accepts: the
# binary starts on it (addresses and data_dir overridden by flags, as only
# they differ outside the cluster) and stops cleanly on SIGTERM.
set -euo pipefail

bin="$1"
configmap="$2"
dir="${TEST_TMPDIR:-/tmp}"
/usr/bin/python3 - "$configmap" "$dir/keyverifier.textproto" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
open(sys.argv[2], "w").write(doc["data"]["keyverifier.textproto"])
PY
log="$dir/keyverifier.log"
"$bin" --config "$dir/keyverifier.textproto" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 \
  --data_dir "$dir/data" --grace_seconds 1 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q 'serving on' "$log" && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: the service refused the ConfigMap's config:"; cat "$log"; exit 1; }
  sleep 0.1
done
grep -q 'serving on' "$log" || { echo "FAIL: the service did not start"; cat "$log"; exit 1; }
grep -o '"components":"[^"]*"' "$log"
kill -TERM "$pid"
wait "$pid"
trap - EXIT
echo "ok: the ConfigMap's configuration starts the service"
