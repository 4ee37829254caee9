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

"$bin" --config keyverifier.textproto 2>log &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*serving on .*(port \([0-9]*\)).*/\1/p' log | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "no port"; cat log; exit 1; }
grep -q '"mutual_tls":"on"' log || { echo "mutual TLS not reported on"; cat log; exit 1; }

allowed=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem persister.pem persister.key)
stranger=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem stranger.pem stranger.key)
anonymous=$(/usr/bin/python3 "$client" "127.0.0.1:$port" "$stubs" ca.pem)
echo "allowlisted client: $allowed; other client of the CA: $stranger; no certificate: $anonymous"
[ "$allowed" = "OK" ] || { echo "allowlisted client refused"; exit 1; }
[ "$stranger" = "PERMISSION_DENIED" ] || { echo "stranger not refused"; exit 1; }
[ "$anonymous" = "UNAVAILABLE" ] || { echo "client without certificate got through"; exit 1; }
kill -TERM "$pid"
wait "$pid"
trap - EXIT
echo "ok: mutual TLS with allowlist"
