#!/usr/bin/env bash
# Renders the kustomize base with kubectl and checks every object offline
# (tools/k8s-validate: schema + unknown-field check). Also checks that the
# checker itself rejects an unknown and a mistyped field, so a pass means
# something. The validator's node_modules come from tools/bootstrap.sh.
set -euo pipefail

# The workspace holds node_modules, which are not declared as test inputs.
root="$(cd "$(dirname "$(realpath "$0")")/../.." && pwd)"
validator="$root/tools/k8s-validate"
[ -d "$validator/node_modules/kubernetes-models" ] || {
  echo "tools/k8s-validate/node_modules missing: run tools/bootstrap.sh"; exit 1; }

rendered="${TEST_TMPDIR:-/tmp}/rendered.yaml"
kubectl kustomize "$root/k8s/base" >"$rendered" 2>/dev/null
node "$validator/validate.mjs" "$rendered"

for kind in Deployment Service ConfigMap PersistentVolumeClaim; do
  grep -q "^kind: $kind$" "$rendered" || { echo "no $kind rendered"; exit 1; }
done
grep -q 'readOnlyRootFilesystem: true' "$rendered" || { echo "root filesystem not read-only"; exit 1; }
grep -q 'runAsNonRoot: true' "$rendered" || { echo "not non-root"; exit 1; }
grep -q 'grpc:' "$rendered" || { echo "no gRPC probes"; exit 1; }

# The checker must catch what it claims to.
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/; s/replicas: 1/replicas: one/' \
  "$rendered" >"$rendered.bad"
if out=$(node "$validator/validate.mjs" "$rendered.bad"); then
  echo "validator accepted a broken manifest"; exit 1
fi
[[ "$out" == *"readOnlyRootFilesytem"* ]] || { echo "unknown field not reported: $out"; exit 1; }
[[ "$out" == *"replicas"* ]] || { echo "mistyped field not reported: $out"; exit 1; }
echo "ok: manifests render and validate; broken ones are rejected"
