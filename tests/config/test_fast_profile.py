"""Profiles are overlays on the configuration: same alerts and levels, scaled durations."""

import shutil
import subprocess
import sys

import pytest
import yaml

from mixin import profiles, rules
from mixin.config import Config, kind
from mixin.durations import fmt, seconds
from native import paths
from tests.promtool import promtool_on_trimmed_rules

CFG = Config()


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
    standard = rules_of(rules.build(CFG))
    other = rules_of(rules.build(profiles.apply(name)))
    assert other.keys() == standard.keys()
    for rule_name, rule in standard.items():
        assert other[rule_name].get("labels") == rule.get("labels")
    t, s = profiles.apply(name).thresholds.knobs(), CFG.thresholds.knobs()
    for knob, value in s.items():
        if kind(knob) is None and knob not in profiles.PER_WINDOW:
            assert t[knob] == value, f"{name} changed the level {knob}"


def test_fast_profile_shrinks_every_window_and_for_but_keeps_several_scrapes():
    fast, standard = profiles.apply("fast").thresholds.knobs(), CFG.thresholds.knobs()
    for knob, value in standard.items():
        if kind(knob) in ("_for", "_window"):
            assert seconds(fast[knob]) <= seconds(value)
        if kind(knob) == "_window":
            assert seconds(fast[knob]) >= 6 * 5, f"{knob}: a rate needs several 5 s scrapes"


def test_kubernetes_profile_suits_a_30s_scrape():
    cfg = profiles.apply("kubernetes")
    assert cfg.evaluation_interval == "30s" and cfg.scrape_interval == "30s"
    assert cfg.autoscaling.keda, "the kubernetes profile knows workers autoscaled by KEDA"
    for knob, value in cfg.thresholds.knobs().items():
        if kind(knob) == "_window":
            assert seconds(value) >= 4 * 30, f"{knob} sees fewer than 4 scrapes"
        if kind(knob) == "_for":
            assert seconds(value) >= 2 * 30, f"{knob} is shorter than two evaluations"


def test_profiles_compose_with_a_users_configuration():
    """An overlay keeps what the user set and scales what is a duration."""
    mine = Config.model_validate({"jobs": {"exporter": "team-exporter"}, "thresholds": {"success_for": "10m"}})
    fast = profiles.apply("fast", mine)
    assert fast.jobs.exporter == "team-exporter"
    assert fast.thresholds.success_for == "1m"  # 10m / 10, at most 60 s


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown profile 'slow'"):
        profiles.apply("slow")


def test_no_window_is_inlined_as_a_literal_a_profile_cannot_scale():
    # Every number of seconds in a rule must come from the profile: render two profiles and the
    # windows' seconds appear only where each profile puts them.
    standard = yaml.safe_dump(rules.build(CFG))
    fast = yaml.safe_dump(rules.build(profiles.apply("fast")))
    ws = seconds(CFG.thresholds.success_window)
    assert f"* {ws} " in standard and f"* {ws} " not in fast


# The standard profile's generated tests run for a user's configuration in test_mixin_config.py.
@pytest.mark.parametrize("name", ["fast", "kubernetes"])
def test_cli_renders_a_profile_whose_promtool_tests_pass(name, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mixin", "render", "--profile", name, "--out", str(tmp_path)],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "celery.rules.yml").read_text()
    assert rules.dump(rules.build(profiles.apply(name))) in text
    if shutil.which("promtool") is None:
        pytest.skip("promtool missing: run `make deps`")
    check = subprocess.run(
        ["promtool", "check", "rules", "celery.rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = sorted((tmp_path / "tests").glob("*.test.yml"))
    assert tests, "no promtool tests rendered"
    run = promtool_on_trimmed_rules(tests, tmp_path / "trimmed")
    assert run.returncode == 0, run.stdout + run.stderr


def test_cli_render_needs_an_output_folder():
    result = subprocess.run(
        [sys.executable, "-m", "mixin", "render", "--profile", "fast"], cwd=paths.REPO, capture_output=True, text=True
    )
    assert result.returncode == 2 and "--out" in result.stderr and "Traceback" not in result.stderr
