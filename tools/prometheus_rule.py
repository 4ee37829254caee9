#!/usr/bin/env python3
"""Writes the prometheus-operator PrometheusRule carrying the groups of a
Prometheus rule file, so the rules have one source:

    tools/prometheus_rule.py k8s/monitoring/alerts.yaml > k8s/monitoring/prometheusrule.yaml

//tests/k8s:alerts_test fails when the committed file differs from what this
writes.
"""
import sys

import yaml


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def prometheus_rule(rule_file_text, source):
    rules = yaml.safe_load(rule_file_text)
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "keyverifier",
            # kube-prometheus' default ruleSelector; other installations
            # select on their own labels (see README, "Operating").
            "labels": {"prometheus": "k8s", "role": "alert-rules"},
        },
        "spec": {"groups": rules["groups"]},
    }
    header = ("# Generated from %s by tools/prometheus_rule.py; edit that file and\n"
              "# run the tool again (//tests/k8s:alerts_test checks they agree).\n" % source)
    return header + yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=100,
                              allow_unicode=True)


def main(args):
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0]) as f:
        sys.stdout.write(prometheus_rule(f.read(), "k8s/monitoring/alerts.yaml"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
