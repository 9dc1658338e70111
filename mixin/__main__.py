"""`python -m mixin`: render the mixin.

  python -m mixin                 regenerate the bundle's committed files (what `make generate` runs):
                                  alerts/celery.rules.yml, the dashboards, the chart's files, the
                                  Redis Prometheus config, the generated blocks of the docs and
                                  docs/configuration.md
  python -m mixin render --out DIR [--config FILE] [--profile NAME]
                                  rules, promtool tests and dashboards for a configuration (yours:
                                  a YAML file with only what differs from the bundle's; see
                                  docs/mixin.md), optionally with a profile (fast, kubernetes)

A configuration that cannot be rendered is refused with one line per problem, naming the key and the
value, and exit status 2.
"""

import argparse
import sys
from pathlib import Path

from mixin import chart, dashboards, docs, profiles, prometheus, rules, settings_reference
from mixin.render import render
from mixin.config import Config, ConfigError, load

ALERTS_DIR = rules.RULES_PATH.parent


def generate():
    """The bundle's committed files. Its promtool tests (alerts/tests/) are written by hand."""
    cfg = Config()
    written = [rules.write(rules.RULES_PATH, cfg)]
    written += dashboards.generate(cfg)
    written += docs.generate()
    written += chart.generate()
    written += prometheus.generate(cfg)
    written += settings_reference.generate()
    return written


def parser():
    p = argparse.ArgumentParser(
        prog="python -m mixin",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    sub = p.add_subparsers(dest="command")
    r = sub.add_parser("render", help="render a configuration's rules, promtool tests and dashboards into --out")
    r.add_argument("--config", type=Path, help="YAML file of settings that differ from the bundle's")
    r.add_argument(
        "--profile",
        choices=list(profiles.PROFILES),
        default="standard",
        help="overlays on the configuration (default: standard, none)",
    )
    r.add_argument("--out", type=Path, required=True, help="output folder")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.command == "render":
            cfg = load(args.config) if args.config else Config()
            source = str(args.config) if args.config else "the bundle's configuration"
            if args.profile != "standard":
                source += f", profile {args.profile}"
            written = render(profiles.apply(args.profile, cfg), args.out, source)
        else:
            written = generate()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"python -m mixin: {line}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
