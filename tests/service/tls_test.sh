#!/usr/bin/env bash
# The gRPC port with mutual TLS and a client allowlist, configured through a
# config file: a test CA issues the server's and two clients' certificates;
# only the allowlisted client may call, a client without a certificate cannot
# even connect, and a bad config value is refused at start naming the key.
set -euo pipefail

bin="$(realpath "$1")"
client="$(realpath "$2")"
stubs="$(cd "$(dirname "$3")/../.." && pwd)"
dir="${TEST_TMPDIR:-/tmp}/tls"
mkdir -p "$dir"
cd "$dir"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=keyverifier test CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
issue() {  # name subjectAltName
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
issue server "DNS:keyverifier.test"
issue persister "URI:spiffe://homeserver/event-persister"
issue stranger "DNS:stranger.test"

cat >trusted.json <<'KEYS'
{"domain": {"ed25519:1": {"key": "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI", "valid_until_ts": 9000000000000}}}
KEYS
cat >keyverifier.textproto <<CONF
listen: "127.0.0.1:0"
metrics_listen: "127.0.0.1:0"
data_dir: "$dir/data"
trusted_keys_file: "$dir/trusted.json"
tls {
  cert_file: "$dir/server.pem"
  key_file: "$dir/server.key"
  client_ca_file: "$dir/ca.pem"
  allowed_client_names: "spiffe://homeserver/event-persister"
  reload_seconds: 1
}
CONF

# A bad value is refused at start, naming the key.
printf 'log_level: "loud"\n' >bad.textproto
if out=$(timeout 10 "$bin" --config bad.textproto 2>&1); then echo "bad config accepted"; exit 1; fi
[[ "$out" == *"log_level"* ]] || { echo "error does not name log_level: $out"; exit 1; }
printf 'listen: "127.0.0.1:0"\nmetrics_listen: "127.0.0.1:0"\nfrobnicate: 1\n' >bad2.textproto
if out=$(timeout 10 "$bin" --config bad2.textproto 2>&1); then echo "unknown key accepted"; exit 1; fi
[[ "$out" == *"frobnicate"* && "$out" == *"line 3"* ]] || { echo "error does not name the key/line: $out"; exit 1; }
printf 'limits { max_request_bytes: 3000000000 }\n' >bad3.textproto
if out=$(timeout 10 "$bin" --config bad3.textproto 2>&1); then echo "limit beyond int accepted"; exit 1; fi
[[ "$out" == *"limits.max_request_bytes"* ]] || { echo "error does not name the limit: $out"; exit 1; }
printf 'listen: "127.0.0.1:0"\nmetrics_listen: "127.0.0.1:0"\ndata_dir: "%s/bad4"\noutbound { nat64_prefixes: "64:ff9b::/96" nat64_prefixes: "64:ff9b:1::/80" }\n' "$dir" >bad4.textproto
if out=$(timeout 10 "$bin" --config bad4.textproto 2>&1); then echo "NAT64 prefix of length 80 accepted"; exit 1; fi
[[ "$out" == *"outbound: nat64_prefixes[1]"*"64:ff9b:1::/80"* ]] || { echo "error does not name the prefix: $out"; exit 1; }
# One notary listed twice would count twice towards a quorum.
printf 'listen: "127.0.0.1:0"\nmetrics_listen: "127.0.0.1:0"\ndata_dir: "%s/bad5"\nfetch { quorum: 2 notaries { server_name: "n.example" verify_keys { key: "ed25519:1" value: "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI" } } notaries { server_name: "N.example" verify_keys { key: "ed25519:1" value: "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI" } } }\n' "$dir" >bad5.textproto
if out=$(timeout 10 "$bin" --config bad5.textproto 2>&1); then echo "a notary listed twice accepted"; exit 1; fi
[[ "$out" == *"fetch.notaries[1].server_name"*"listed more than once"* ]] || { echo "error does not name the duplicate notary: $out"; exit 1; }
# A pinned keys file whose map names something that is not a server name.
printf '{"not a server": {"ed25519:1": {"key": "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI", "valid_until_ts": 9000000000000}}}' >badkeys.json
printf 'listen: "127.0.0.1:0"\nmetrics_listen: "127.0.0.1:0"\ndata_dir: "%s/bad6"\ntrusted_keys_file: "%s/badkeys.json"\n' "$dir" "$dir" >bad6.textproto
if out=$(timeout 10 "$bin" --config bad6.textproto 2>&1); then echo "a bad server name in the keys file accepted"; exit 1; fi
[[ "$out" == *"not a server"*"not a server name"* ]] || { echo "error does not name the bad server name: $out"; exit 1; }
printf 'listen: "127.0.0.1:0"\nmetrics_listen: "127.0.0.1:0"\ndata_dir: "%s/bad7"\nbanned_keys { server_name: "a.example" key_id: "ed25519:ok" } banned_keys { server_name: "b.example" key_id: "rsa:1" }\n' "$dir" >bad7.textproto
if out=$(timeout 10 "$bin" --config bad7.textproto 2>&1); then echo "a bad banned key accepted"; exit 1; fi
[[ "$out" == *"banned_keys: entry 1: key_id"*"rsa:1"* ]] || { echo "error does not name the banned key entry: $out"; exit 1; }
echo "ok: bad config refused naming the key"

start() {  # CONFIG LOG: starts the service; sets pid and port
  "$bin" --config "$1" 2>"$2" &
  pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*serving on .*(port \([0-9]*\)).*/\1/p' "$2" | head -1)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  echo "no port ($1)"; cat "$2"; exit 1
}
trap 'kill "$pid" 2>/dev/null || true' EXIT
start keyverifier.textproto log
grep -q '"mutual_tls":"on"' log || { echo "mutual TLS not reported on"; cat log; exit 1; }

allowed=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem persister.pem persister.key)
stranger=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem stranger.pem stranger.key)
anonymous=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem)
echo "allowlisted client: $allowed; other client of the CA: $stranger; no certificate: $anonymous"
[ "$allowed" = "OK" ] || { echo "allowlisted client refused"; exit 1; }
[ "$stranger" = "PERMISSION_DENIED" ] || { echo "stranger not refused"; exit 1; }
[ "$anonymous" = "UNAVAILABLE" ] || { echo "client without certificate got through"; exit 1; }
echo "ok: mutual TLS with allowlist"

# Certificate renewal while serving: new files (written as Kubernetes updates
# a Secret: a new file renamed over the old) serve new connections within the
# reload interval; a key of another certificate is refused and logged, and
# the renewed certificate stays in use.
served() {  # SHA-256 fingerprint of the certificate the gRPC port presents
  openssl s_client -connect "127.0.0.1:$port" -servername keyverifier.test \
    -cert persister.pem -key persister.key -CAfile ca.pem </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
replace() { cp "$2" "$1.new" && mv "$1.new" "$1"; }
first=$(fingerprint server.pem)
[ "$(served)" = "$first" ] || { echo "not serving server.pem: $(served)"; exit 1; }
issue renewed "DNS:keyverifier.test"
renewed=$(fingerprint renewed.pem)
replace server.key renewed.key
replace server.pem renewed.pem
for _ in $(seq 1 100); do [ "$(served)" = "$renewed" ] && break; sleep 0.1; done
[ "$(served)" = "$renewed" ] || { echo "renewed certificate not served: $(served)"; cat log; exit 1; }
after=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem persister.pem persister.key)
[ "$after" = "OK" ] || { echo "allowlisted client refused after the renewal: $after"; exit 1; }
# The log names the certificate now served (the watcher reads on gRPC's
# schedule, so it may come a moment after the handshake shows it).
for _ in $(seq 1 50); do
  grep '"msg":"serving certificate loaded"' log | grep '"listener":"grpc"' |
    grep -q "\"certificate\":\"CN=renewed sha256:$(openssl x509 -in renewed.pem -outform DER | sha256sum | cut -d' ' -f1)" && break
  sleep 0.1
done
grep '"msg":"serving certificate loaded"' log | grep -q '"certificate":"CN=renewed' ||
  { echo "the renewal is not logged"; cat log; exit 1; }
echo "ok: a renewed certificate is served without a restart"

replace server.key stranger.key
for _ in $(seq 1 50); do grep -q 'renewed certificate files refused' log && break; sleep 0.1; done
grep 'renewed certificate files refused' log | grep -q "server.key: the private key does not belong to the first certificate of" ||
  { echo "a key of another certificate was not refused by name"; cat log; exit 1; }
sleep 1.5  # another reload round of gRPC's watcher
[ "$(served)" = "$renewed" ] || { echo "a bad key replaced the served certificate: $(served)"; cat log; exit 1; }
kept=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem persister.pem persister.key)
[ "$kept" = "OK" ] || { echo "calls fail after a bad renewal: $kept"; cat log; exit 1; }
metrics_port=$(sed -n 's/.*metrics on .*(port \([0-9]*\)).*/\1/p' log | head -1)
curl -sf "http://127.0.0.1:$metrics_port/metrics" >metrics.txt
grep -q '^keyverifier_serving_certificate_expiry_timestamp_seconds{listener="grpc"} [1-9]' metrics.txt ||
  { echo "no expiry metric"; grep serving_certificate metrics.txt; exit 1; }
grep -q '^keyverifier_serving_certificate_loads_total{listener="grpc",outcome="refused"} [1-9]' metrics.txt ||
  { echo "the refused reload is not counted"; grep serving_certificate metrics.txt; exit 1; }
echo "ok: a bad renewal is refused and the renewed certificate stays"

kill -TERM "$pid"
wait "$pid"

# TLS without client certificates: any client that trusts the CA may call.
# (The start checks the files too: the mismatched key left above must go.)
if "$bin" --config keyverifier.textproto >bad-start.log 2>&1; then echo "started with a mismatched key"; exit 1; fi
grep '"msg":"cannot set up TLS"' bad-start.log | grep -q "server.key: the private key does not belong" ||
  { echo "the start did not name the mismatched key"; cat bad-start.log; exit 1; }
replace server.key renewed.key
sed -e '/client_ca_file/d' -e '/allowed_client_names/d' -e 's|/data"|/data-tls"|' \
  keyverifier.textproto >server-only.textproto
start server-only.textproto log2
grep -q '"mutual_tls":"off"' log2 || { echo "mutual TLS not reported off"; cat log2; exit 1; }
plain=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem)
[ "$plain" = "OK" ] || { echo "a client without a certificate was refused on server-only TLS: $plain"; cat log2; exit 1; }
kill -TERM "$pid"
wait "$pid"
trap - EXIT
echo "ok: server-only TLS"
