# The two commands a newcomer needs: `make demo` and `make test`.
# Each installs what it needs (Debian packages, .venv, the package) by itself.

VENV   := .venv
PY     := $(VENV)/bin/python
EXTRAS := dev,clinic

.PHONY: demo test deps lint typecheck architecture pytest services clean

deps:
	EXTRAS=$(EXTRAS) sh provisioning/install-deps

services: deps
	sh tests/services/pcscd.sh
	sh tests/services/postgres.sh

demo: services
	$(VENV)/bin/kiosk demo

lint: deps
	$(VENV)/bin/ruff check contract kiosk clinic testbed tests
	$(VENV)/bin/ruff format --check contract kiosk clinic testbed tests

typecheck: deps
	$(VENV)/bin/mypy

# one direction of dependencies: contract <- kiosk, clinic <- testbed (pyproject.toml)
architecture: deps
	$(VENV)/bin/lint-imports

pytest: services
	SDL_AUDIODRIVER=dummy SDL_VIDEODRIVER=dummy $(PY) -m pytest

test: lint typecheck architecture pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
