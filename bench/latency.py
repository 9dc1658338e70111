"""Section 4: alert latency, fault -> webhook notification, for CelerySuccessRateLow, against its bound
scrape interval (exporter job) + rule evaluation interval + `for` + Alertmanager group_wait.

Runs the bench's own Prometheus (the bundle's prometheus.yml and alert rules) and Alertmanager (the
bundle's alertmanager.yml with the webhook pointed at a receiver in this process), on the bench's ports. The
"standard" profile uses the real rules (`for: 2m`: minutes); "fast" is the mixin's fast profile.
A warm-up at 99% success comes first so that every series exists, as it does in production; the fault
is then every task failing, timed from its first publish.
"""

import http.server
import json
import shutil
import threading
import time

import yaml

from mixin import profiles, rules
from mixin.config import Config
from native import paths
from bench import routes
from bench.configs import CONFIGS
from bench.publisher import Publisher
from bench.state import STATE, BenchError

ALERT = "CelerySuccessRateLow"
RULES = paths.REPO / "alerts" / "celery.rules.yml"


class Webhook:
    """Alertmanager's receiver: records (arrival time, payload) of every POST."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.time(), json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def first_firing(self, alertname, after):
        for t, payload in self.received:
            for alert in payload.get("alerts", []):
                if alert["labels"].get("alertname") == alertname and alert["status"] == "firing" and t >= after:
                    return t
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def write_rules(profile):
    rules_dir = STATE / "rules"
    shutil.rmtree(rules_dir, ignore_errors=True)
    rules_dir.mkdir(parents=True)
    rules.write(rules_dir / RULES.name, profiles.apply(profile), f"profile {profile}")
    return yaml.safe_load((rules_dir / RULES.name).read_text())


def bound(rules):
    """The parts of the bound, in seconds, read from the configuration files themselves."""
    prom = yaml.safe_load((paths.REPO / "prometheus" / "prometheus.yml").read_text())
    scrape = next(
        j.get("scrape_interval", prom["global"]["scrape_interval"])
        for j in prom["scrape_configs"]
        if j["job_name"] == Config().jobs.exporter
    )
    group, rule = next((g, r) for g in rules["groups"] for r in g["rules"] if r.get("alert") == ALERT)
    evaluation = group.get("interval", prom["global"]["evaluation_interval"])
    am = yaml.safe_load((paths.REPO / "alertmanager" / "alertmanager.yml").read_text())
    # Alertmanager's own default when no route on the way sets group_wait.
    settings = routes.route(am["route"], {"alertname": ALERT, **rule.get("labels", {})}, {"group_wait": "30s"})
    return routes.latency_bound(scrape, evaluation, rule.get("for", "0s"), settings["group_wait"])


def run(bench, profile, warmup, rate, say):
    rules = write_rules(profile)
    parts = bound(rules)
    say(
        f"alert latency: {ALERT}, {profile} profile (for {parts['for_s']:.0f}s), bound {parts['bound_s']:.0f}s; "
        f"warm-up {warmup:.0f}s at {rate:g} tasks/s"
    )
    hook = Webhook()
    try:
        bench.up(CONFIGS["full"], alert_rules=STATE / "rules", webhook=hook.url)
        warm = Publisher(
            bench, "--kind", "maybe_fail", "--rate", rate, "--duration", warmup, "--fail-every", 100, "--wait-go"
        )
        warm.go()
        warm.result(warmup + 30)
        if hook.first_firing(ALERT, 0) is not None:
            raise BenchError(f"{ALERT} fired during the warm-up (99% success): nothing left to time")
        limit = parts["bound_s"] * 2 + 60
        fault = Publisher(
            bench, "--kind", "maybe_fail", "--rate", rate, "--duration", limit, "--fail-every", 1, "--wait-go"
        )
        t_fault = fault.go()
        deadline = time.time() + limit
        while (t_alert := hook.first_firing(ALERT, t_fault)) is None:
            if time.time() > deadline:
                raise BenchError(f"{ALERT} did not reach the webhook within {limit:.0f}s of the fault")
            time.sleep(0.2)
        fault.terminate()
        latency = t_alert - t_fault
        say(f"  fault -> notification {latency:.1f}s, bound {parts['bound_s']:.0f}s: {latency / parts['bound_s']:.2f}x")
        return {
            "alert": ALERT,
            "profile": profile,
            "warmup_s": warmup,
            "rate": rate,
            "latency_s": latency,
            **parts,
            "ratio_to_bound": latency / parts["bound_s"],
        }
    finally:
        hook.close()
        bench.down()
