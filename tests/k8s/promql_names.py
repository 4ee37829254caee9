"""The metric names a PromQL expression reads, and the series names a
Prometheus text scrape offers: what tests/k8s/monitoring_metrics_test.py
compares for every dashboard query and alert expression.

The names are read without a full PromQL parser: strings, label matchers,
range and subquery brackets, grouping label lists (by, without, on,
ignoring, group_left, group_right) and Grafana variables are removed; what
remains that is neither a function nor a keyword nor a number is a metric
name. `label_values(metric, label)` (Grafana's templating) names `metric`.
"""
import re

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "inf", "nan", "atan2"}
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr):
    """The set of metric names `expr` reads."""
    m = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*,[^)]*\)\s*", expr)
    if m:
        return {m.group(1)}
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", " ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    # Numbers and durations (offset 5m, 1e3, 0x1f, 1h30m).
    s = re.sub(r"(?<![A-Za-z0-9_:.])(?:0x[0-9a-fA-F]+|(?:\d+(?:ms|[smhdwy]))+|\d*\.?\d+(?:[eE][+-]?\d+)?)"
               r"(?![A-Za-z0-9_:])", " ", s)
    names = set()
    for m in _IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):  # a function or aggregation
            continue
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def scraped_names(text):
    """Series names a scrape offers: every sample's name, and for each
    declared family the names its type gives (a histogram's _bucket, _sum
    and _count; a summary's own name, _sum and _count)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(None, 3)
            if kind == "histogram":
                names.update(family + s for s in ("_bucket", "_sum", "_count"))
            elif kind == "summary":
                names.update(family + s for s in ("", "_sum", "_count"))
            else:
                names.add(family)
        elif line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names


def unknown_names(exprs, exported, external_prefixes=("kube_",)):
    """{expr: [names not exported]} for each expression naming a metric that
    is neither in `exported` nor from an outside exporter (by prefix)."""
    out = {}
    for expr in exprs:
        missing = sorted(n for n in metric_names(expr)
                         if n not in exported and not n.startswith(external_prefixes))
        if missing:
            out[expr] = missing
    return out


def dashboard_queries(dashboard):
    """Every query of a Grafana dashboard: panel targets (rows' nested
    panels too) and templating variables' queries."""
    exprs = []

    def walk(panels):
        for p in panels:
            exprs.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
            walk(p.get("panels", []))
    walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if var.get("type") == "query" and q:
            exprs.append(q)
    return exprs


def rule_expressions(rule_file):
    """Every expression of a Prometheus rule file (parsed YAML)."""
    return [r["expr"] for g in rule_file["groups"] for r in g["rules"]]
