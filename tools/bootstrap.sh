#!/usr/bin/env bash
# Installs every Debian package that building, running and testing keyverifier
# needs. Idempotent: when everything is already installed it only checks and exits.
# Works as root; otherwise uses sudo.
set -euo pipefail

PACKAGES=(
  # Build
  bazel-bootstrap bazel-rules-java g++ pkg-config
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev libssl-dev libsodium-dev prometheus-cpp-dev
  libcurl4-openssl-dev libc-ares-dev libsqlite3-dev libpq-dev rapidjson-dev
  libsimdjson-dev
  # Tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-signedjson python3-canonicaljson python3-nacl
  python3-grpcio python3-protobuf
  postgresql dnsmasq-base bind9-dnsutils prometheus openssl curl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "bootstrap: installing ${missing[*]}" >&2
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
