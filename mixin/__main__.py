"""`python -m mixin`: regenerate every generated file from mixin/config.py.

Without options it writes the committed files: the standard profile's rules and promtool tests
(alerts/), the dashboards and the generated blocks of the docs. Tests fail when they drift.
`--profile NAME --out DIR` renders another alerting profile's rules and tests into DIR.
"""
import argparse
import sys
from pathlib import Path

from mixin import alert_tests, dashboards, profiles, rules

ALERTS_DIR = rules.RULES_PATH.parent


def write_profile(profile, out: Path):
    """out/celery.rules.yml and out/tests/<signal>.test.yml for the profile."""
    paths = [rules.generate_rules(out / rules.RULES_PATH.name, profile)]
    (out / "tests").mkdir(parents=True, exist_ok=True)
    for stem, doc in alert_tests.build(profile).items():
        path = out / "tests" / f"{stem}.test.yml"
        path.write_text(alert_tests.render(doc, profile))
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mixin", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(profiles.PROFILES), default=None,
                        help="render this alerting profile's rules and tests into --out")
    parser.add_argument("--out", type=Path, help="output folder for --profile")
    args = parser.parse_args(argv)
    if (args.profile is None) != (args.out is None):
        parser.error("--profile and --out go together")
    try:
        if args.profile:
            written = write_profile(profiles.get(args.profile), args.out)
        else:
            written = write_profile(profiles.standard(), ALERTS_DIR) + list(dashboards.generate())
            from mixin import chart, docs
            written += docs.generate()
            # The Helm chart's embedded copies (charts/celery-observability/files/).
            written += chart.generate()
    except ValueError as exc:
        sys.exit(f"python -m mixin: {exc}")
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
