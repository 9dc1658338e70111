"""Where an alert goes and how long it takes: Alertmanager's routing and inhibition evaluated as
Alertmanager does, from its configuration, and the bound on the time from condition to notification.
The bench's alert-latency section measures against this bound; the live alert tests wait for it, and
the config tests check the evaluation against amtool's cases."""

import re

from mixin.durations import seconds

_MATCHER = re.compile(r'^\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
_OPS = {
    "=": lambda have, value: have == value,
    "!=": lambda have, value: have != value,
    "=~": lambda have, value: re.fullmatch(value, have) is not None,  # anchored, as Alertmanager
    "!~": lambda have, value: re.fullmatch(value, have) is None,
}


def parse_matcher(text):
    """'severity=~"warning|info"' -> ("severity", "=~", "warning|info")."""
    return _MATCHER.match(text).groups()


def matches(matchers, labels):
    """True if `labels` satisfy every matcher (a missing label is "")."""
    for matcher in matchers:
        name, op, value = parse_matcher(matcher)
        if not _OPS[op](labels.get(name, ""), value):
            return False
    return True


def route(tree, labels, inherited=None):
    """The settings of the route an alert with `labels` lands on: the first matching child,
    recursively, each level inheriting what it does not set (continue: is not used here)."""
    settings = {**(inherited or {}), **{k: v for k, v in tree.items() if k not in ("routes", "matchers")}}
    for child in tree.get("routes", []):
        if matches(child.get("matchers", []), labels):
            return route(child, labels, settings)
    return settings


def inhibited(inhibit_rules, source, target):
    """True if the firing alert `source` mutes `target` under `inhibit_rules`."""
    return any(
        matches(rule.get("source_matchers", []), source)
        and matches(rule.get("target_matchers", []), target)
        and all(source.get(label, "") == target.get(label, "") for label in rule.get("equal", []))
        for rule in inhibit_rules
    )


def latency_bound(scrape, evaluation, for_, group_wait, window=None):
    """Seconds from a condition to its notification at worst, by part: one scrape interval, one rule
    evaluation interval, the rule's `for`, Alertmanager's group_wait and, when given, the
    expression's `window` filling with the condition first. Durations as Prometheus writes them
    ("5s", "2m")."""
    parts = {
        "scrape_s": seconds(scrape),
        "evaluation_s": seconds(evaluation),
        "for_s": seconds(for_),
        "group_wait_s": seconds(group_wait),
    }
    if window is not None:
        parts["window_s"] = seconds(window)
    return {**parts, "bound_s": sum(parts.values())}
