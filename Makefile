# The two commands a newcomer needs: `make demo` and `make test`.
# Each installs what it needs (Debian packages, .venv, the package) by itself.

VENV   := .venv
PY     := $(VENV)/bin/python
EXTRAS := dev,clinic

.PHONY: demo test deps lint typecheck architecture pytest services services-pcscd \
	services-postgres clean image image-test image-arm64-test image-reproducible bundle update-test

deps:
	EXTRAS=$(EXTRAS) sh provisioning/install-deps

# pcscd with the virtual reader (the demo and the card tests); PostgreSQL (the clinic server's
# tests only: the demo's clinic server keeps its records in SQLite)
services: services-pcscd services-postgres

services-pcscd: deps
	sh tests/services/pcscd.sh

services-postgres: deps
	sh tests/services/postgres.sh

demo: services-pcscd
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

# The appliance image (docs/image.md): BASE=debian (ARCH=amd64, the default, or ARCH=arm64 for
# the Raspberry Pi) or BASE=FILE.img (a Raspberry Pi OS Lite arm64 image); image-test builds
# the amd64 image and boots it in QEMU.
BASE  ?= debian
ARCH  ?= amd64
IMAGE ?= build/onshi-kiosk-$(if $(filter debian,$(BASE)),$(ARCH),arm64).img
# the maintainer's update keys (docs/updates.md); made here on first use when missing
UPDATE_KEYS ?= build/update-keys

$(UPDATE_KEYS)/update-ca.cert.pem:
	provisioning/update-keys $(UPDATE_KEYS)

image: deps $(UPDATE_KEYS)/update-ca.cert.pem
	sh provisioning/install-image-deps
	mkdir -p build
	provisioning/build-image --base $(BASE) $(if $(filter debian,$(BASE)),--arch $(ARCH)) \
		--update-ca $(UPDATE_KEYS)/update-ca.cert.pem --out $(IMAGE)

image-test: deps $(UPDATE_KEYS)/update-ca.cert.pem
	sh provisioning/install-image-deps
	mkdir -p build
	provisioning/image-test

# the Raspberry Pi image (--base debian --arch arm64) built, checked as files (its layout, boot
# files, root) and booted in QEMU's arm64 virt machine with a patient's PIN check, the watchdog
# and a power cut (slow: about 30 minutes; build/image-arm64-test/report.json)
image-arm64-test: deps $(UPDATE_KEYS)/update-ca.cert.pem
	sh provisioning/install-image-deps
	mkdir -p build
	provisioning/image-test-arm64

# a signed update bundle of the image (docs/updates.md): make image, then make bundle
BUNDLE ?= $(IMAGE:.img=.raucb)

bundle: deps $(UPDATE_KEYS)/update-ca.cert.pem
	sh provisioning/install-image-deps
	provisioning/build-bundle $(IMAGE) --cert $(UPDATE_KEYS)/signing.cert.pem \
		--key $(UPDATE_KEYS)/signing.key.pem --out $(BUNDLE)

# the updates booted in QEMU: N -> N+1, a broken N+2 rolled back, a power cut mid-install,
# bad bundles refused (uses the image make image-test built, or builds it)
update-test: deps $(UPDATE_KEYS)/update-ca.cert.pem
	sh provisioning/install-image-deps
	mkdir -p build
	provisioning/update-test

# two builds of the same commit must be the same image, byte for byte (docs/image.md)
image-reproducible: deps $(UPDATE_KEYS)/update-ca.cert.pem
	sh provisioning/install-image-deps
	mkdir -p build
	provisioning/build-image --base debian --update-ca $(UPDATE_KEYS)/update-ca.cert.pem \
		--out build/reproducible-1.img
	provisioning/build-image --base debian --update-ca $(UPDATE_KEYS)/update-ca.cert.pem \
		--out build/reproducible-2.img
	cmp build/reproducible-1.img build/reproducible-2.img
	@echo "image-reproducible: the two builds are the same image"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
