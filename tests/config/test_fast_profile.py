"""Alerting profiles are rendered by the mixin: same alerts and thresholds, scaled durations."""
import shutil
import subprocess
import sys

import pytest
import yaml

from mixin import config, profiles, rules
from mixin.durations import fmt, seconds
from native import paths


def rules_of(doc):
    return {(r.get("alert") or r.get("record")): r for g in doc["groups"] for r in g["rules"]}


def test_durations_parse_and_format_both_ways():
    assert seconds("5m") == 300 and seconds("1m30s") == 90 and seconds("1d") == 86400
    assert fmt(300) == "5m" and fmt(90) == "90s" and fmt(7200) == "2h"
    for bad in ("5 m", "5", "", "5y", None):
        with pytest.raises(ValueError, match="duration"):
            seconds(bad)


@pytest.mark.parametrize("name", sorted(profiles.PROFILES))
def test_profile_keeps_names_labels_and_levels(name):
    standard = rules_of(rules.build(profiles.standard()))
    other = rules_of(rules.build(profiles.get(name)))
    assert other.keys() == standard.keys()
    for rule_name, rule in standard.items():
        assert other[rule_name].get("labels") == rule.get("labels")
    t, s = profiles.get(name).thresholds, config.THRESHOLDS
    for knob, value in s.items():
        if profiles.kind(knob) is None and knob not in profiles.PER_WINDOW:
            assert t[knob] == value, f"{name} changed the level {knob}"


def test_fast_profile_shrinks_every_window_and_for_but_keeps_several_scrapes():
    fast, standard = profiles.fast().thresholds, profiles.standard().thresholds
    for knob, value in standard.items():
        if profiles.kind(knob) in ("_for", "_window"):
            assert seconds(fast[knob]) <= seconds(value)
        if profiles.kind(knob) == "_window":
            assert seconds(fast[knob]) >= 6 * 5, f"{knob}: a rate needs several 5 s scrapes"


def test_kubernetes_profile_suits_a_30s_scrape():
    profile = profiles.kubernetes()
    assert profile.evaluation_interval == "30s"
    for knob, value in profile.thresholds.items():
        if profiles.kind(knob) == "_window":
            assert seconds(value) >= 4 * 30, f"{knob} sees fewer than 4 scrapes"
        if profiles.kind(knob) == "_for":
            assert seconds(value) >= 2 * 30, f"{knob} is shorter than two evaluations"


def test_bad_thresholds_are_refused_naming_the_knob():
    with pytest.raises(ValueError, match="success_window"):
        profiles.standard({**config.THRESHOLDS, "success_window": "five minutes"})
    with pytest.raises(ValueError, match="success_ratio_min"):
        profiles.standard({**config.THRESHOLDS, "success_ratio_min": 95})
    with pytest.raises(ValueError, match="unknown profile 'slow'"):
        profiles.get("slow")


def test_no_window_is_inlined_as_a_literal_a_profile_cannot_scale():
    # Every number of seconds in a rule must come from the profile: render two profiles and the
    # windows' seconds appear only where each profile puts them.
    standard = yaml.safe_dump(rules.build(profiles.standard()))
    fast = yaml.safe_dump(rules.build(profiles.fast()))
    ws = seconds(config.THRESHOLDS["success_window"])
    assert f"* {ws} " in standard and f"* {ws} " not in fast


@pytest.mark.parametrize("name", ["fast", "kubernetes"])
def test_cli_renders_a_profile_whose_promtool_tests_pass(name, tmp_path):
    result = subprocess.run([sys.executable, "-m", "mixin", "--profile", name, "--out", str(tmp_path)],
                            cwd=paths.REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "celery.rules.yml").read_text() == rules.render(profiles.get(name))
    if shutil.which("promtool") is None:
        pytest.skip("promtool missing: run `make deps`")
    check = subprocess.run(["promtool", "check", "rules", "celery.rules.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "tests").glob("*.test.yml"))
    run = subprocess.run(["promtool", "test", "rules", *tests], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_cli_refuses_a_profile_without_an_output_folder():
    result = subprocess.run([sys.executable, "-m", "mixin", "--profile", "fast"], cwd=paths.REPO,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "--out" in result.stderr and "Traceback" not in result.stderr
