"""Create .env from .env.example on first run, with a random value for every `change-me`."""
import secrets

from native import paths

PLACEHOLDER = "change-me"


def ensure(say=print, example=None, dest=None):
    """Write .env if it does not exist; returns True when it was created."""
    example = example or paths.REPO / ".env.example"
    dest = dest or paths.REPO / ".env"
    if dest.exists():
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
