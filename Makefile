# The two commands a newcomer needs: `make demo` and `make test`.
# Each installs what it needs (Debian packages, .venv, the package) by itself.

VENV   := .venv
PY     := $(VENV)/bin/python
EXTRAS := dev,clinic

.PHONY: demo test deps lint typecheck pytest services clean

deps:
	EXTRAS=$(EXTRAS) sh provisioning/install-deps

services: deps
	sh tests/services/pcscd.sh
	sh tests/services/postgres.sh

demo: services
	$(VENV)/bin/kiosk demo

lint: deps
	$(VENV)/bin/ruff check kiosk clinic tests
	$(VENV)/bin/ruff format --check kiosk clinic tests

typecheck: deps
	$(VENV)/bin/mypy

pytest: services
	SDL_AUDIODRIVER=dummy SDL_VIDEODRIVER=dummy $(PY) -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
