"""Create .env from .env.example on first run, with a random value for every `change-me`."""
import secrets

from native import paths

PLACEHOLDER = "change-me"


def ensure(say=print, example=None, dest=None):
    """Write .env if it does not exist; returns True when it was created.

    An existing .env that lacks a secret added to .env.example since (a `change-me` key) gets that
    key appended with a random value; nothing else in it is changed.
    """
    example = example or paths.REPO / ".env.example"
    dest = dest or paths.REPO / ".env"
    if dest.exists():
        have = dest.read_text()
        keys = {line.partition("=")[0].strip() for line in have.splitlines() if "=" in line and not line.lstrip().startswith("#")}
        missing = [line.partition("=")[0] for line in example.read_text().splitlines()
                   if not line.lstrip().startswith("#") and line.partition("=")[2].strip() == PLACEHOLDER
                   and line.partition("=")[0].strip() not in keys]
        if missing:
            extra = "".join(f"{key}={secrets.token_urlsafe(24)}\n" for key in missing)
            dest.write_text(have + ("" if have.endswith("\n") or not have else "\n") + extra)
            say(f"added {', '.join(missing)} with random values to {dest}")
        return False
    lines = []
    for line in example.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and value.strip() == PLACEHOLDER:
            # URL-safe: these end up inside amqp:// and http:// URLs.
            line = f"{key}={secrets.token_urlsafe(24)}"
        lines.append(line)
    dest.write_text("\n".join(lines) + "\n")
    dest.chmod(0o600)
    say(f"created {dest} with random secrets (RabbitMQ user, Grafana admin, Flower, Flask); keep it private")
    return True
