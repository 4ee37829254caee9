#!/usr/bin/env bash
# Renders the cluster overlay with kubectl and checks every object offline
# (tools/k8s-validate, custom resources included), then the properties the
# shared deployment rests on: several replicas on PostgreSQL from a Secret,
# rolling updates, autoscaling, a disruption budget, spreading across nodes,
# the network policy, mutual TLS from mounted Secrets with the config keys
# the service has, monitoring objects whose rules are alerts.yaml's. Also
# shows the validator rejecting broken variants of it.
set -euo pipefail

root="$(cd "$(dirname "$(realpath "$0")")/../.." && pwd)"
validator="$root/tools/k8s-validate"
[ -d "$validator/node_modules/@kubernetes-models/prometheus-operator" ] || {
  echo "tools/k8s-validate/node_modules missing or old: run tools/bootstrap.sh"; exit 1; }

dir="${TEST_TMPDIR:-/tmp}"
rendered="$dir/cluster.yaml"
kubectl kustomize "$root/k8s/overlays/cluster" >"$rendered" 2>/dev/null
node "$validator/validate.mjs" "$rendered"

/usr/bin/python3 - "$rendered" "$root/k8s/monitoring/alerts.yaml" "$root/protos/keyverifier/v1/config.proto" <<'PY'
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
alerts = yaml.safe_load(open(sys.argv[2]))
proto = open(sys.argv[3]).read()
failures = []
def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok: failures.append(what)
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
def one(kind):
    objs = by_kind.get(kind, [])
    check(len(objs) == 1, "one %s (found %d)" % (kind, len(objs)))
    return objs[0] if objs else {}

dep = one("Deployment")
spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
c = pod.get("containers", [{}])[0]
check(spec.get("replicas", 1) > 1, "several replicas (%s)" % spec.get("replicas"))
check(spec.get("strategy", {}).get("type") == "RollingUpdate", "RollingUpdate strategy")
check(spec["strategy"].get("rollingUpdate", {}).get("maxUnavailable") == 0, "no replica taken away before its replacement is ready")
check("PersistentVolumeClaim" not in by_kind, "no PersistentVolumeClaim")
check(not any("persistentVolumeClaim" in v for v in pod.get("volumes", [])), "no volume from a claim")
spread = pod.get("topologySpreadConstraints", [])
check(any(t["topologyKey"] == "kubernetes.io/hostname" and t["whenUnsatisfiable"] == "DoNotSchedule"
          and t["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"] for t in spread),
      "replicas spread across nodes, selecting the Deployment's own pods")

# PostgreSQL: the connection's particulars from a Secret, never in the manifests.
env = {e["name"]: e for e in c.get("env", [])}
for var in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"):
    ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("name") == "keyverifier-postgres", "%s from Secret keyverifier-postgres" % var)
check(not any("value" in e for e in env.values()), "no literal environment values")
check("Secret" not in by_kind, "no Secret committed")
config = next(d for d in by_kind["ConfigMap"] if d["metadata"]["name"] == "keyverifier-config")
text = config["data"]["keyverifier.textproto"]
check(re.search(r'store\s*\{\s*kind:\s*postgres\b', text) is not None, "store kind postgres")
check(not re.search(r"password\s*=", text), "no password in the configuration")

# Mutual TLS: the keys the service has (config.proto's Tls), from the mounted Secret.
tls_fields = set(re.findall(r"^\s+(?:repeated\s+)?string\s+(\w+)\s*=",
                            re.search(r"message Tls \{(.*?)\n  \}", proto, re.S).group(1), re.M))
check(tls_fields == {"cert_file", "key_file", "client_ca_file", "allowed_client_names"},
      "config.proto's Tls has the fields used here (%s)" % sorted(tls_fields))
tls_block = re.search(r"tls\s*\{(.*?)\}", text, re.S).group(1)
used = set(re.findall(r"(\w+)\s*:", tls_block))
check(used == tls_fields, "the config's tls block sets exactly those (%s)" % sorted(used))
check(len(re.findall(r"allowed_client_names:", tls_block)) >= 1, "a client allowlist")
mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
for f in re.findall(r'(?:cert_file|key_file|client_ca_file):\s*"([^"]+)"', tls_block):
    mount = next((p for p in mounts if f.startswith(p.rstrip("/") + "/")), None)
    secret = volumes.get(mounts.get(mount), {}).get("secret", {}).get("secretName")
    check(secret == "keyverifier-tls", "%s is mounted from Secret keyverifier-tls" % f)
cert = one("Certificate")
check(cert.get("spec", {}).get("secretName") == "keyverifier-tls", "cert-manager keeps Secret keyverifier-tls")
for probe in ("readinessProbe", "livenessProbe"):
    check("grpc" not in c.get(probe, {}), "%s needs no plaintext gRPC" % probe)

hpa = one("HorizontalPodAutoscaler")
check(hpa.get("apiVersion") == "autoscaling/v2", "HPA is autoscaling/v2")
check(hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"], "HPA scales the Deployment")
check(hpa["spec"]["minReplicas"] > 1 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"], "HPA range")
pdb = one("PodDisruptionBudget")
check(pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"], "PDB selects the pods")
check(1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "PDB leaves room for a drain")

np = one("NetworkPolicy")
nps = np["spec"]
check(set(nps["policyTypes"]) == {"Ingress", "Egress"}, "NetworkPolicy limits both ways")
ports_in = {r["ports"][0]["port"]: r["from"][0]["podSelector"]["matchLabels"] for r in nps["ingress"]}
check(ports_in == {8470: {"app.kubernetes.io/part-of": "homeserver"},
                   9470: {"app.kubernetes.io/name": "prometheus"}},
      "ingress: gRPC from homeserver components, metrics from Prometheus (%s)" % ports_in)
egress_ports = sorted((p["protocol"], p["port"]) for r in nps["egress"] for p in r["ports"])
check(egress_ports == [("TCP", 53), ("TCP", 443), ("TCP", 5432), ("TCP", 8448), ("UDP", 53)],
      "egress ports: DNS, HTTPS, federation, PostgreSQL (%s)" % egress_ports)
https = next(r for r in nps["egress"] if any(p["port"] == 443 for p in r["ports"]))
blocks = {b["ipBlock"]["cidr"]: set(b["ipBlock"]["except"]) for b in https["to"]}
check({"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
       "100.64.0.0/10"} <= blocks.get("0.0.0.0/0", set()), "HTTPS not to private IPv4")
check({"fc00::/7", "fe80::/10", "::1/128"} <= blocks.get("::/0", set()), "HTTPS not to private IPv6")

sm = one("ServiceMonitor")
svc = one("Service")
check(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(),
      "ServiceMonitor selects the Service")
check(sm["spec"]["endpoints"][0]["port"] in [p["name"] for p in svc["spec"]["ports"]],
      "ServiceMonitor scrapes a named port of the Service")
rule = one("PrometheusRule")
check(rule.get("spec", {}).get("groups") == alerts["groups"], "PrometheusRule carries alerts.yaml's groups")
dash = [d for d in by_kind["ConfigMap"] if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
check(len(dash) == 1, "the dashboard ConfigMap for Grafana's sidecar")
check(all(d["metadata"].get("namespace") == "keyverifier" for d in docs), "everything in namespace keyverifier")
sys.exit(1 if failures else 0)
PY

# The checker must catch broken custom resources and objects of the overlay.
sed -e 's/^  endpoints:$/  endpoint:/' \
    -e 's/secretName: keyverifier-tls$/secretNme: keyverifier-tls/' \
    -e 's/minReplicas: 3/minReplicas: three/' \
    -e 's/- alert: KeyverifierKeysVanished/- alrt: KeyverifierKeysVanished/' \
    "$rendered" >"$rendered.bad"
if out=$(node "$validator/validate.mjs" "$rendered.bad"); then
  echo "validator accepted a broken overlay"; exit 1
fi
echo "$out"
for expect in "ServiceMonitor/keyverifier" "Certificate/keyverifier-tls" "HorizontalPodAutoscaler/keyverifier" "PrometheusRule/keyverifier"; do
  [[ "$out" == *"$expect"* ]] || { echo "not reported: $expect"; exit 1; }
done
[[ "$out" == *"alrt"* ]] || { echo "unknown rule field not reported"; exit 1; }
# A kind no model knows is refused, not skipped.
printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {}\n' >"$dir/unknown.yaml"
if node "$validator/validate.mjs" "$dir/unknown.yaml"; then echo "unknown kind accepted"; exit 1; fi
echo "ok: the cluster overlay renders and validates; broken variants are rejected"
