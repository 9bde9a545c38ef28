"""build-image's modules (stdlib only, like the script: it runs before any virtual environment)."""
