"""promtool on rule files and their unit tests, from the tests.

A generated test file checks a few alerts; promtool evaluates every rule of its rule file at every
step of every case, and some cases span a day (a baseline a day back). promtool_on_trimmed_rules
runs each file against its rule file trimmed to the alerts it checks and the recording rules they
read: the same rules, the others left out. The hand-written tests of alerts/tests run against the
full file (tests/config/test_alert_rules.py), as a user runs them."""

import re
import subprocess
from pathlib import Path

import yaml

_RECORD = re.compile(r"celery:[A-Za-z0-9_:]+")


def promtool(*args, cwd=None, timeout=300):
    return subprocess.run(["promtool", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def alerts_in(spec):
    return [r for g in spec["groups"] for r in g["rules"] if "alert" in r]


def trimmed(spec, alert_names):
    """spec with only the named alerts and the recording rules they read (transitively), in their
    groups and order: the same rules, without evaluating the others at every step of a long case."""
    records = {}
    for g in spec["groups"]:
        for r in g["rules"]:
            if "record" in r:
                records.setdefault(r["record"], []).append(r["expr"])
    needed, todo = set(), [r["expr"] for r in alerts_in(spec) if r["alert"] in alert_names]
    while todo:
        for name in _RECORD.findall(todo.pop()):
            if name in records and name not in needed:
                needed.add(name)
                todo += records[name]

    def kept(rule):
        return rule.get("record") in needed or rule.get("alert") in alert_names

    return {"groups": [{**g, "rules": [r for r in g["rules"] if kept(r)]} for g in spec["groups"]]}


def checked_alerts(test_doc):
    """The alert names a promtool test document checks."""
    return {
        m
        for t in test_doc["tests"]
        for c in t.get("promql_expr_test", [])
        for m in re.findall(r'alertname="([^"]+)"', c["expr"])
    }


def promtool_on_trimmed_rules(test_files, out):
    """promtool test rules on each of test_files (paths of generated test documents, each with one
    rule file), each against its rules trimmed to what it checks; copies are written to out."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for i, path in enumerate(map(Path, test_files)):
        doc = yaml.safe_load(path.read_text())
        [rule_file] = doc["rule_files"]
        spec = yaml.safe_load((path.parent / rule_file).read_text())
        alerts = checked_alerts(doc)
        kept = trimmed(spec, alerts)
        assert {r["alert"] for r in alerts_in(kept)} == alerts, f"{path.name} checks alerts its rules lack"
        (out / f"rules-{i}.yml").write_text(yaml.safe_dump(kept, sort_keys=False))
        copy = out / f"{i}-{path.name}"
        copy.write_text(yaml.safe_dump({**doc, "rule_files": [f"rules-{i}.yml"]}, sort_keys=False))
        copies.append(copy.name)
    return promtool("test", "rules", *copies, cwd=out)
