#!/bin/sh
# Prints the path of a Python 3.11 or 3.12 with the venv module (what native mode and the tests
# need: the pinned celery-exporter supports no other version). PYTHON=/path/to/python picks one.
# Without a suitable one, says what to install and exits 1, before anything else has happened.
set -u

suitable() {
    "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12)) else 1)' \
        >/dev/null 2>&1
}

if [ -n "${PYTHON:-}" ]; then
    candidates=$PYTHON
else
    candidates="python3.12 python3.11 python3"
fi
found=""
for name in $candidates; do
    path=$(command -v "$name" 2>/dev/null) || continue
    if suitable "$path"; then
        echo "$path"
        exit 0
    fi
    version=$("$path" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "?")
    found="$found $path (Python $version)"
done

{
    echo "error: native mode and the tests need Python 3.11 or 3.12 with its venv module."
    if [ -n "$found" ]; then
        echo "  found only:$found (another version, or without venv/ensurepip)"
    else
        echo "  found none of: $candidates"
    fi
    echo "  Debian/Ubuntu: sudo apt-get install python3.11 python3.11-venv (or python3-venv)"
    echo "  other systems: install Python 3.12 (python.org, pyenv, uv python install 3.12),"
    echo "  then run again, or name it: PYTHON=/path/to/python3.12 make ..."
    echo "  The Docker path needs no Python: start Docker, then make up (or MODE=docker make up)."
} >&2
exit 1
