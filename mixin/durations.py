"""The one parser and formatter of Prometheus durations the project uses ('90s', '5m', '1d')."""

import re

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")


def seconds(duration: str) -> int:
    """'5m' -> 300, '1m30s' -> 90. Anything else is refused, naming the value."""
    if not isinstance(duration, str) or not re.fullmatch(r"(?:\d+[wdhms])+", duration):
        raise ValueError(f"not a Prometheus duration: {duration!r} (expected e.g. '30s', '5m', '1d')")
    return sum(int(n) * UNITS[unit] for n, unit in _PART.findall(duration))


def fmt(secs) -> str:
    """300 -> '5m', 90 -> '90s': the largest unit that divides the value exactly."""
    secs = int(round(secs))
    if secs <= 0:
        raise ValueError(f"a duration must be positive, got {secs}s")
    for unit, size in UNITS.items():
        if secs % size == 0:
            return f"{secs // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")
