#!/usr/bin/env bash
# Runs the differential test with Debian's Python, which is where the reference
# packages (canonicaljson, signedjson, nacl) are installed; a python3 found on
# PATH may be another interpreter without them. -I keeps user site-packages and
# PYTHON* variables from swapping in other versions of those packages.
set -euo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: $0 DIFFERENTIAL_TEST_PY JSON_DRIVER" >&2
  exit 2
fi
exec /usr/bin/python3 -I "$1" --driver "$2"
