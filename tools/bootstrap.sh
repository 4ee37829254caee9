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
  libsimdjson-dev libgoogle-perftools-dev libevent-dev
  # Runtime: the system CA bundle and the Public Suffix List
  ca-certificates publicsuffix
  # Tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-signedjson python3-canonicaljson python3-nacl python3-cryptography
  python3-yaml
  python3-grpcio python3-protobuf
  postgresql dnsmasq-base bind9-dnsutils prometheus openssl curl
  # Fuzzing (--config=fuzz): clang and its libFuzzer runtime
  clang libclang-rt-14-dev
)

# Commands that may come from elsewhere on some machines; Debian's packages
# otherwise.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The offline Kubernetes manifest checker's npm packages (pinned by its lock
# file); reinstalled only when the lock file changes.
validator="$(cd "$(dirname "$0")" && pwd)/k8s-validate"
stamp="$validator/node_modules/.lock-stamp"
if ! cmp -s "$validator/package-lock.json" "$stamp" 2>/dev/null; then
  echo "bootstrap: installing tools/k8s-validate npm packages" >&2
  (cd "$validator" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$validator/package-lock.json" "$stamp"
fi
