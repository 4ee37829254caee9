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

# check-chain on a chain made with the openssl command: root -> leaf.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=cli-root -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign -keyout "$dir/root.key" -out "$dir/root.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=cli.example \
  -keyout "$dir/leaf.key" -out "$dir/leaf.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:cli.example\nauthorityKeyIdentifier=keyid\n' >"$dir/leaf.ext"
openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/root.pem" -CAkey "$dir/root.key" \
  -CAcreateserial -days 10 -extfile "$dir/leaf.ext" -out "$dir/leaf.pem" 2>/dev/null

out=$("$cli" check-chain --name cli.example --chain "$dir/leaf.pem" --roots "$dir/root.pem"); rc=$?
check "check-chain valid" 0 '"verdict":"valid"' "$rc" "$out"
out=$("$cli" check-chain --name other.example --chain "$dir/leaf.pem" --roots "$dir/root.pem"); rc=$?
check "check-chain wrong name" 1 '"hostname_mismatch"' "$rc" "$out"
out=$("$cli" check-chain --name cli.example --chain "$dir/leaf.pem" --roots "$dir/leaf.pem" \
  --at 2000-01-01T00:00:00Z); rc=$?
check "check-chain not yet valid" 1 '"not_yet_valid"' "$rc" "$out"
out=$("$cli" check-chain --name cli.example --chain "$dir/ev.json" 2>&1); rc=$?
check "check-chain no certificate" 2 'neither PEM nor a DER certificate' "$rc" "$out"

out=$("$cli" 2>&1); rc=$?
check "no subcommand" 2 'usage' "$rc" "$out"
exit $fail
