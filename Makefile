# Relay — the two commands are `make run` and `make test`.
# Every target installs what is missing first (Debian/Ubuntu, apt), and
# skips apt entirely when everything is present, so it also works offline.

SHELL := /bin/bash
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Build and link dependencies, plus the independent TLS peers the interop tests run.
APT_PACKAGES := libssl-dev liblmdb-dev pkg-config openssl gnutls-bin

.PHONY: deps build release test run pki fuzz bench-store bench-tls bench-wire bench-policy clean

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

# A development PKI under dev/pki (CA, server for localhost/127.0.0.1, and
# clients: billing, operator, a SPIFFE workload), created once.
pki: release
	@if [ ! -f dev/pki/ca.pem ]; then .build/release/relayctl pki init --dir dev/pki; fi
run: pki
	@mkdir -p data
	@echo ""
	@echo "relayd is starting on 127.0.0.1:7443 with config/relay.toml. In another terminal, try:"
	@echo ""
	@echo "  # an operator (OU=operators) may subscribe to everything:"
	@echo "  .build/release/relay-sub --server 127.0.0.1:7443 --ca dev/pki/ca.pem \\"
	@echo "      --cert dev/pki/operator.pem --key dev/pki/operator.key --topic 'billing.>'"
	@echo ""
	@echo "  # a billing service (OU=billing, CN=billing-service) publishes under billing.billing-service.>:"
	@echo "  .build/release/relay-pub --server 127.0.0.1:7443 --ca dev/pki/ca.pem \\"
	@echo "      --cert dev/pki/billing.pem --key dev/pki/billing.key --topic billing.billing-service.invoice --message 'hello'"
	@echo ""
	@echo "  # a SPIFFE workload (spiffe://relay.example/payments/api) publishes under workloads.payments.>:"
	@echo "  .build/release/relay-pub --server 127.0.0.1:7443 --ca dev/pki/ca.pem \\"
	@echo "      --cert dev/pki/payments.pem --key dev/pki/payments.key --topic workloads.payments.charge --message 'ok'"
	@echo ""
	exec .build/release/relayd --config config/relay.toml

# Fuzzing is bounded: FUZZ_SECONDS per target (default 60).
FUZZ_SECONDS ?= 60
fuzz: deps
	@for script in Fuzz/run-*.sh; do bash "$$script" $(FUZZ_SECONDS) || exit 1; done

bench-store: deps
	$(SWIFT) build -c release --product relay-bench-store && .build/release/relay-bench-store

bench-tls: deps
	$(SWIFT) build -c release --product relay-bench-tls && .build/release/relay-bench-tls

bench-wire: deps
	$(SWIFT) build -c release --product relay-bench-wire && .build/release/relay-bench-wire

bench-policy: deps
	$(SWIFT) build -c release --product relay-bench-policy && .build/release/relay-bench-policy

clean:
	rm -rf .build .build-*
