#!/usr/bin/env bash
# The real keyverifier_cli binary: standard input, files, output and exit codes.
set -uo pipefail
cli="$1"
fail=0
check() {  # name expected_rc expected_stdout_substring actual_rc actual_out
  if [ "$4" != "$2" ] || [[ "$5" != *"$3"* ]]; then
    echo "FAIL $1: rc=$4 (want $2) out=$5"
    fail=1
  else
    echo "ok   $1"
  fi
}

out=$(printf '{"b":2,"a":[1,{"d":"\\u00e9","c":null}]}' | "$cli" canonical-json); rc=$?
check "canonical-json stdin" 0 '{"a":[1,{"c":null,"d":"é"}],"b":2}' "$rc" "$out"
[ "$(printf '{}' | "$cli" canonical-json | od -An -c | tr -d ' ')" = "{}" ] || { echo "FAIL trailing newline"; fail=1; }

out=$(printf '{"a":1,"a":2}' | "$cli" canonical-json 2>&1); rc=$?
check "duplicate key" 2 'duplicate key' "$rc" "$out"

dir="${TEST_TMPDIR:-/tmp}"
printf '{"type":"m.room.member","content":{"membership":"join","displayname":"x"},"unsigned":{}}' >"$dir/ev.json"
out=$("$cli" redact --room-version 9 "$dir/ev.json"); rc=$?
check "redact file" 0 '{"content":{"membership":"join"},"type":"m.room.member"}' "$rc" "$out"

out=$("$cli" verify-event --room-version 1 "$dir/ev.json" 2>&1); rc=$?
check "missing --keys" 2 '--keys' "$rc" "$out"

out=$("$cli" 2>&1); rc=$?
check "no subcommand" 2 'usage' "$rc" "$out"
exit $fail
