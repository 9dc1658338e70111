"""Generated blocks in the docs (filled in below)."""


def generate():
    return []
