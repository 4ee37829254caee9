#!/usr/bin/env bash
# The alerting rules: promtool accepts the rule file, its unit tests pass
# (alerts_test.yaml), every alert has a test where it fires and one where
# it does not, and the PrometheusRule is exactly what tools/prometheus_rule.py
# writes from the rule file. A rule with a changed threshold must fail the
# unit tests, so a pass means something.
set -euo pipefail

alerts="$PWD/$1"; tests="$PWD/$2"; generator="$PWD/$3"; committed="$PWD/$4"
dir="${TEST_TMPDIR:-/tmp}/alerts"
mkdir -p "$dir"
cp "$alerts" "$dir/alerts.yaml"
cp "$tests" "$dir/alerts_test.yaml"
cd "$dir"

promtool check rules alerts.yaml
promtool test rules alerts_test.yaml

/usr/bin/python3 - alerts.yaml alerts_test.yaml <<'PY'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
names = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
fires, quiet = set(), set()
for t in tests["tests"]:
    for case in t.get("alert_rule_test", []):
        (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
bad = [n for n in names if n not in fires or n not in quiet]
for n in names:
    print("%s: %s" % ("ok" if n not in bad else "FAIL", n) +
          ("" if n not in bad else " (fires: %s, quiet: %s)" % (n in fires, n in quiet)))
unknown = (fires | quiet) - set(names)
if unknown: print("FAIL: tests for no rule:", sorted(unknown))
sys.exit(1 if bad or unknown or len(names) < 10 else 0)
PY

/usr/bin/python3 "$generator" alerts.yaml >prometheusrule.yaml
diff -u "$committed" prometheusrule.yaml || {
  echo "FAIL: k8s/monitoring/prometheusrule.yaml is stale: run tools/prometheus_rule.py k8s/monitoring/alerts.yaml > k8s/monitoring/prometheusrule.yaml"
  exit 1; }

sed 's/> 0.25$/> 0.5/' alerts.yaml >broken.yaml
cmp -s alerts.yaml broken.yaml && { echo "FAIL: the threshold to break was not found"; exit 1; }
sed 's/^  - alerts.yaml$/  - broken.yaml/' alerts_test.yaml >broken_test.yaml
if promtool test rules broken_test.yaml >broken.log 2>&1; then
  echo "FAIL: the unit tests passed with a changed threshold"; exit 1
fi
grep -q "KeyverifierKeyFetchFailures" broken.log || { cat broken.log; exit 1; }
echo "ok: rules checked and unit-tested; a changed threshold is caught"
