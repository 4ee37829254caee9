#!/usr/bin/env bash
# The image must carry what the binary needs at run time: every shared
# library the service binary links directly (readelf NEEDED) comes from a
# Debian package the Dockerfile installs, or one those depend on (the closure
# is read from this machine's dpkg database, where the same packages are
# installed for the build), or debian:12-slim itself; and the data files it
# reads (CA bundle, Public Suffix List) are installed too.
#
# dpkg and ldd run once for all packages and libraries, and lookups stay in
# the shell: a process per library made this test slow on a busy machine.
set -euo pipefail

bin="$1"
dockerfile="$2"
base_packages=" libc6 libgcc-s1 libstdc++6 "

listed=$(sed -n '/apt-get install/,/rm -rf/p' "$dockerfile" | tr -s ' \\\t&' '\n' \
  | grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vxE 'apt-get|install|rm|update|RUN' | sort -u)
# The packages apt would bring in with them (Depends and Pre-Depends).
declare -A installed=()
for p in $listed; do installed[$p]=1; done
frontier="$listed"
while [ -n "$frontier" ]; do
  next=""
  for d in $(dpkg-query -W -f '${Depends}, ${Pre-Depends}\n' $frontier 2>/dev/null \
      | tr ',|' '\n\n' | sed 's/(.*)//; s/:any//; s/[[:space:]]//g' | grep -v '^$' \
      | sort -u || true); do
    [ -n "${installed[$d]:-}" ] || { installed[$d]=1; next="$next $d"; }
  done
  frontier="$next"
done
missing=0
check_package() {  # package, why
  if [ -z "${installed[$1]:-}" ]; then
    echo "FAIL: the Dockerfile does not install $1, nor anything depending on it ($2)"
    missing=1
  else
    echo "ok: $1 ($2)"
  fi
}

# soname => path, as the loader resolves it for this binary.
declare -A resolved=()
while read -r name arrow path _; do
  [ "$arrow" = "=>" ] && [ "${path:0:1}" = "/" ] && resolved[$name]=$path
done < <(ldd "$bin")
# path without /usr => the package owning it (dpkg knows a library by one of
# its paths, with or without /usr), from "package:arch[, ...]: path" lines.
declare -A owner=()
candidates=()
for path in "${resolved[@]}"; do candidates+=("${path#/usr}" "/usr${path#/usr}"); done
while IFS= read -r line; do
  case "$line" in *": /"*) ;; *) continue;; esac
  packages=${line%%: /*}
  path=${line#"$packages: "}
  [ -n "${owner[${path#/usr}]:-}" ] || owner[${path#/usr}]=${packages%%:*}
done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)

while read -r soname; do
  case "$soname" in ld-linux*) continue;; esac
  # Sanitizer runtimes: only a --config=asan build links them, and the image
  # is never built from one.
  case "$soname" in libasan.so.*|libubsan.so.*) echo "skip: $soname (sanitizer build)"; continue;; esac
  path=${resolved[$soname]:-}
  [ -n "$path" ] || { echo "FAIL: $soname does not resolve"; missing=1; continue; }
  pkg=${owner[${path#/usr}]:-}
  [ -n "$pkg" ] || { echo "FAIL: no package owns $path"; missing=1; continue; }
  case "$base_packages" in *" $pkg "*) echo "ok: $pkg ($soname, in the base image)"; continue;; esac
  check_package "$pkg" "$soname"
done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')

check_package ca-certificates "the system CA bundle for federation TLS"
check_package publicsuffix "the Public Suffix List for wildcard checks"

[ "$missing" -eq 0 ] || exit 1
echo "ok: the image has every run-time dependency"
