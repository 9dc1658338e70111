"""Create .env from .env.example on first run, with a random value for every `change-me`; later,
add the keys an older .env lacks (never changing a value it has). scripts/compose_stack.sh does the
same on the Docker path, without Python.

Which keys .env has is what native/env.py's reader (python-dotenv) finds in it, `export KEY=...`
and `KEY = ...` included. .env.example itself is plain KEY=value lines, copied line by line (a test
checks that python-dotenv reads the same keys from it)."""

import re
import secrets

from native import env, paths

PLACEHOLDER = "change-me"
KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _fill(line):
    m = KEY_LINE.match(line)
    if m and m.group(2).strip() == PLACEHOLDER:
        # Hex, as scripts/compose_stack.sh writes: safe inside amqp:// and http:// URLs, and never
        # begins with "-", which command-line tools would take for an option.
        return f"{m.group(1)}={secrets.token_hex(24)}"
    return line


def ensure(say=print, example=None, dest=None):
    """Write .env if it does not exist (returns True), else append the keys it lacks (False)."""
    example = example or paths.REPO / ".env.example"
    dest = dest or paths.REPO / ".env"
    lines = example.read_text().splitlines()
    if not dest.exists():
        dest.touch(mode=0o600)
        dest.write_text("\n".join(_fill(line) for line in lines) + "\n")
        dest.chmod(0o600)
        say(f"created {dest} with random secrets (RabbitMQ user, Grafana admin, Flower, Flask); keep it private")
        return True
    text = dest.read_text()
    have = set(env.read_dotenv(dest))
    missing = [_fill(line) for line in lines if KEY_LINE.match(line) and KEY_LINE.match(line).group(1) not in have]
    if missing:
        with dest.open("a") as f:
            if text and not text.endswith("\n"):
                f.write("\n")
            f.write("# Added from .env.example by make up (missing keys; existing values unchanged):\n")
            f.write("\n".join(missing) + "\n")
        say(f"added to {dest} from .env.example: {' '.join(line.split('=', 1)[0] for line in missing)}")
    return False
