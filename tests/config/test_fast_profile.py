"""The live tests' alerting profile is derived from the real rule files, not kept by hand."""
import re
import shutil
import subprocess

import pytest
import yaml

from native import derive, paths

RULE_FILES = sorted((paths.REPO / "alerts").glob("*.rules.yml"))


def rules_of(doc):
    return {(r.get("alert") or r.get("record")): r for g in doc["groups"] for r in g["rules"]}


def test_fast_expr_scales_windows_and_offsets():
    assert derive.fast_expr("rate(x[5m])") == "rate(x[30s])"
    assert derive.fast_expr("deriv(x[10m])") == "deriv(x[1m])"
    assert derive.fast_expr("rate(x[1m]) / rate(x[1m] offset 1d)") == "rate(x[30s]) / rate(x[30s] offset 2m)"
    assert derive.fast_expr("max_over_time(x[1h:30s])") == "max_over_time(x[6m:30s])"


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_fast_profile_keeps_names_labels_and_thresholds(path, tmp_path):
    real = rules_of(yaml.safe_load(path.read_text()))
    fast_doc = derive.fast_rules(path)
    fast = rules_of(fast_doc)
    assert fast.keys() == real.keys()
    for name, rule in real.items():
        assert fast[name].get("labels") == rule.get("labels")
        assert fast[name].get("annotations") == rule.get("annotations")
        # Only durations change: the numbers outside [...] and `offset` stay (thresholds, factors).
        strip = lambda e: re.sub(r"\[[^\]]*\]|offset \w+", "", e)  # noqa: E731
        assert strip(fast[name]["expr"]) == strip(rule["expr"])
        if "for" in rule:
            assert derive.seconds(fast[name]["for"]) <= derive.seconds(rule["for"])
    if shutil.which("promtool"):
        out = tmp_path / path.name
        derive.write_yaml(fast_doc, out)
        result = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
