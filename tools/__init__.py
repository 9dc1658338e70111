"""Developer tools run from the venv (`make screenshots`); not shipped in the wheel or the image."""
