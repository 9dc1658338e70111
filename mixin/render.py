"""What `python -m mixin render` writes for a configuration: its rules, generated promtool tests,
dashboards and the Flower scrape job its cardinality settings need, in one folder."""

from pathlib import Path

from mixin import alert_tests, dashboards, prometheus, rules
from mixin.config import Config


def render(cfg: Config, out: Path, source):
    """out/celery.rules.yml, out/tests/<file>.test.yml, out/dashboards/*.json and out/scrape/flower.yml
    for cfg."""
    out = Path(out)
    paths = [rules.write(out / rules.RULES_PATH.name, cfg, source)]
    scrape = out / prometheus.FLOWER_SCRAPE
    scrape.parent.mkdir(parents=True, exist_ok=True)
    scrape.write_text(prometheus.flower_scrape_text(cfg))
    paths.append(scrape)
    (out / "tests").mkdir(parents=True, exist_ok=True)
    for stem, doc in alert_tests.build(cfg).items():
        path = out / "tests" / f"{stem}.test.yml"
        path.write_text(alert_tests.render(doc, source))
        paths.append(path)
    return paths + dashboards.generate(cfg, out / "dashboards")
