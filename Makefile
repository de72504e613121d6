# Relay — the two commands are `make run` and `make test`.
# Every target installs what is missing first (Debian/Ubuntu, apt), and
# skips apt entirely when everything is present, so it also works offline.

SHELL := /bin/bash
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Build and link dependencies, plus the independent TLS peers the interop tests run.
APT_PACKAGES := libssl-dev liblmdb-dev pkg-config openssl gnutls-bin

.PHONY: deps build release test run fuzz clean

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi; \
	command -v $(SWIFT) >/dev/null || { echo "swift is not on PATH: install Swift 6 (https://swift.org/install)"; exit 1; }

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

run: deps
	@echo "make run: relayd is not built yet (see issue: relayd)"; exit 1

fuzz: deps
	@echo "make fuzz: no fuzz targets yet"; exit 1

clean:
	rm -rf .build .build-*
