# Relay — the two commands are `make run` and `make test`.
# Every target installs what is missing first (Debian/Ubuntu, apt), and
# skips apt entirely when everything is present, so it also works offline.

SHELL := /bin/bash
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Build and link dependencies, plus the independent TLS peers the interop tests run
# and the TLS scanners TLSScanTests runs (Debian installs testssl.sh as `testssl`),
# promtool (package prometheus), which MetricsExpositionTests runs on a real /metrics,
# systemd for the systemd-analyze that OperationsTests verifies the unit with,
# for the JetStream backend nats.c (libnats-dev) and the nats-server its tests start,
# man (man-db, groff-base), which check-install renders the man pages with,
# and gcc + libc6-dev, which CLoadGeneratorTests compiles scripts/relay_bench.c with.
APT_PACKAGES := gcc libc6-dev libssl-dev liblmdb-dev pkg-config openssl gnutls-bin testssl.sh sslscan prometheus systemd libnats-dev nats-server man-db groff-base zsh fish

.PHONY: deps build release test run pki man install check-install fuzz bench-store bench-tls bench-wire bench-policy bench-micro bench-peers clean

# Fails at once, naming the package, when apt cannot install one (the
# status used to be that of the last command only), and when Swift is
# missing or older than the 6.1 that Package.swift's swift-tools-version needs.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:$$missing"; \
	  $(SUDO) apt-get update -qq || { echo "make deps: apt-get update failed, so these packages cannot be installed:$$missing" >&2; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	  for p in $$missing; do \
	    dpkg -s $$p >/dev/null 2>&1 || { echo "make deps: the package $$p could not be installed (apt-get install failed); install it, then run make again" >&2; exit 1; }; \
	  done; \
	fi; \
	command -v $(SWIFT) >/dev/null || { echo "swift is not on PATH: install Swift 6.1 or later (https://swift.org/install)" >&2; exit 1; }; \
	version=$$($(SWIFT) --version 2>&1 | sed -n 's/.*Swift version \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1); \
	if [ -z "$$version" ] || [ "$$(printf '%s\n' 6.1 "$$version" | sort -V | head -n 1)" != 6.1 ]; then \
	  echo "make deps: '$(SWIFT) --version' says Swift $${version:-(no version found)}; Relay needs Swift 6.1 or later (https://swift.org/install)" >&2; exit 1; \
	fi

build: deps
	$(SWIFT) build

# Every release build of the project's own binaries skips the runtime
# exclusivity checks (4-7% of relayd's and the client's CPU per message).
# The flag is passed here, not in Package.swift: SwiftPM refuses a URL
# dependency whose products carry `.unsafeFlags`, and the manifest is what a
# dependent of RelayClient resolves. `-Xswiftc` reaches every module built,
# Relay's dependencies (swift-nio, ...) included. Debug builds and the tests
# keep the checks. scripts/bench-peers.sh uses the same flags.
RELEASE_FLAGS := -c release -Xswiftc -enforce-exclusivity=unchecked
release: deps
	$(SWIFT) build $(RELEASE_FLAGS)

# The scale and abuse tests hold 1,000 connections on each side of loopback:
# raise the descriptor limit as far as the hard limit allows (CI defaults are
# often 1024), and run them in a second pass, after the rest, so their load
# does not starve the other end-to-end tests' handshakes on a 2-core machine.
# The cluster suites (three nats-servers, leader elections) run in a third
# pass of their own: run next to the abuse tests on a fast 2-core CI machine,
# a JetStream stream create once waited out its 5 s while the cluster settled.
# Then a throwaway package that depends on this one by path builds and
# round-trips a message through relayd with RelayClient
# (scripts/dependent-package.sh; TEST_DEPENDENT=0 skips). Then every
# libFuzzer target runs for TEST_FUZZ_SECONDS (default 60; 0 skips), failing
# on a crash or a leak (make fuzz, below).
HEAVY_TESTS := ScaleTests|AbuseTests
# The load tests (each saturates the two cores for tens of seconds: a crash
# loop under load, a write flood, testssl.sh's scan, tens of thousands of
# durables or subscriptions) run in a pass of their own after the rest. In
# one clean-clone run with them among the other thousand tests, four tests
# that bound their waits failed at once (a 30 s take, a 60 s handshake
# timeout, a flood round, a crash loop's load threshold), every test took
# 80-146 s, and each passed alone (docs/testing.md, "Wave 23").
LOAD_TESTS := CrashLoopTests|WriteStallTests|TLSScanTests|DurableActivityBoundTests|SubscriptionBufferBudgetTests|RouterCacheBoundTests|WildcardChurnRoutingTests
CLUSTER_TESTS := ClusterTests|NATSClusterFixtureTests
TEST_FUZZ_SECONDS ?= 60
TEST_DEPENDENT ?= 1
test: deps
	$(SWIFT) build --build-tests
	ulimit -n $$(ulimit -Hn) 2>/dev/null || ulimit -n 8192 2>/dev/null || true; \
	$(SWIFT) test --skip-build --skip '$(HEAVY_TESTS)|$(LOAD_TESTS)|$(CLUSTER_TESTS)' && \
	$(SWIFT) test --skip-build --filter '$(LOAD_TESTS)' && \
	$(SWIFT) test --skip-build --filter '$(HEAVY_TESTS)' && \
	$(SWIFT) test --skip-build --filter '$(CLUSTER_TESTS)'
	$(MAKE) --no-print-directory check-install
	@if [ "$(TEST_DEPENDENT)" != 0 ]; then SWIFT='$(SWIFT)' bash scripts/dependent-package.sh; fi
	@if [ "$(TEST_FUZZ_SECONDS)" != 0 ]; then $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS); fi

# A development PKI under dev/pki (CA, server for localhost/127.0.0.1, and
# clients: billing, operator, a SPIFFE workload), created once.
pki: release
	@if [ ! -f dev/pki/ca.pem ]; then .build/release/relayctl pki init --dir dev/pki; fi
# --init: relayd creates data/ on the first run (and logs it); without it a
# missing data directory is refused, so a mistyped path is not a new store.
run: pki
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
	exec .build/release/relayd --init --config config/relay.toml

# Man pages for relayd, relayctl, relay-pub and relay-sub (one page each,
# subcommands included), generated from their argument parsers by
# swift-argument-parser's generate-manual plugin, collected in .build/man.
# The plugin builds every product first, in MAN_CONFIGURATION: debug by
# default, as the pages do not depend on it and `make release` builds with
# flags the plugin cannot pass (a plugin release build would rebuild
# .build/release without them). It writes .build/plugins/GenerateManual/
# outputs/<target>/<target>.1; only the four installed tools' pages are
# kept (relay-soak, a test tool, gets one too). Offline: the plugin comes
# from the resolved swift-argument-parser checkout.
MAN_OUT := .build/man
MAN_CONFIGURATION ?= debug
man: deps
	@rm -rf .build/plugins/GenerateManual/outputs  # no stale page passes for a new one
	$(SWIFT) package plugin generate-manual --configuration $(MAN_CONFIGURATION)
	@rm -rf $(MAN_OUT) && mkdir -p $(MAN_OUT)
	@for b in $(INSTALL_BINARIES); do \
	  page=.build/plugins/GenerateManual/outputs/$$b/$$b.1; \
	  [ -s "$$page" ] || { echo "make man: the generate-manual plugin wrote no $$page" >&2; exit 1; }; \
	  cp "$$page" $(MAN_OUT)/; \
	done
	@echo "man pages in $(MAN_OUT): $$(cd $(MAN_OUT) && ls)"

# make install PREFIX=/usr/local: the binaries (release build), their man
# pages, the systemd unit (ExecStart and the config path rewritten to PREFIX
# and SYSCONFDIR) and the example config as relay.toml.example. DESTDIR stages
# a package. INSTALL_SKIP_BUILD=1 installs what is already built: binaries
# from INSTALL_FROM, man pages from .build/man if `make man` ran (the tests
# use it with the debug build). docs/operations.md ("systemd") has the rest.
PREFIX ?= /usr/local
SYSCONFDIR ?= $(PREFIX)/etc
DESTDIR ?=
INSTALL_FROM ?= .build/release
INSTALL_BINARIES := relayd relayctl relay-pub relay-sub
install: $(if $(filter 1,$(INSTALL_SKIP_BUILD)),,release man)
	@for b in $(INSTALL_BINARIES); do \
	  [ -x "$(INSTALL_FROM)/$$b" ] || { echo "make install: $(INSTALL_FROM)/$$b is not built (run make release, or set INSTALL_FROM)" >&2; exit 1; }; \
	done
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/share/man/man1" "$(DESTDIR)$(PREFIX)/lib/systemd/system" "$(DESTDIR)$(SYSCONFDIR)/relay"
	for b in $(INSTALL_BINARIES); do install -m 0755 "$(INSTALL_FROM)/$$b" "$(DESTDIR)$(PREFIX)/bin/$$b"; done
	if ls $(MAN_OUT)/*.1 >/dev/null 2>&1; then install -m 0644 $(MAN_OUT)/*.1 "$(DESTDIR)$(PREFIX)/share/man/man1/"; \
	else echo "make install: no man pages in $(MAN_OUT) (run make man); installing without them" >&2; fi
	sed -e 's|/usr/local/bin/relayd|$(PREFIX)/bin/relayd|' -e 's|/etc/relay/|$(SYSCONFDIR)/relay/|g' config/relayd.service \
	  > "$(DESTDIR)$(PREFIX)/lib/systemd/system/relayd.service"
	chmod 0644 "$(DESTDIR)$(PREFIX)/lib/systemd/system/relayd.service"
	install -m 0640 config/relay.toml "$(DESTDIR)$(SYSCONFDIR)/relay/relay.toml.example"

# Part of `make test`: the man pages generated from the debug build (the
# tests built it; the plugin's build is then a no-op), `make install` of
# the debug binaries into a fresh PREFIX, and scripts/check-install.sh on
# the result (every binary and page in place, relayd.1 documenting --init
# and --check-config as man renders it, no test tool installed).
.PHONY: check-install
check-install: man
	@prefix=$$(mktemp -d); trap 'rm -rf "$$prefix"' EXIT; \
	$(MAKE) --no-print-directory install PREFIX="$$prefix" INSTALL_SKIP_BUILD=1 INSTALL_FROM=.build/debug >/dev/null && \
	bash scripts/check-install.sh "$$prefix"

# Fuzzing is bounded: FUZZ_SECONDS per target (default 60). Each script
# exits non-zero when libFuzzer does: on a crash (a trap in a target's
# invariants, an ASan report) or a leak (LeakSanitizer, on by default with
# ASan); the run stops after the first batch with a failing target and names
# it. Fuzz/fuzz-all.sh builds every target first, then fuzzes FUZZ_JOBS at a
# time: libFuzzer uses one core, so 2 on the 2-core CI machine give each
# target the same fuzzing in half the wall-clock time (FUZZ_JOBS=1: one by one).
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
fuzz: deps
	@FUZZ_JOBS=$(FUZZ_JOBS) bash Fuzz/fuzz-all.sh $(FUZZ_SECONDS)

# Sanitizers, not part of `make test`: the suites that drive the OpenSSL and
# LMDB bridges and the broker's concurrency, under ASan, then TSan, each in its
# own scratch path; both always run, and either failing fails the target.
# Reports go to files (log_path), so those of the relayd children the
# end-to-end tests start are not lost in their captured stderr; any report
# fails the target and is printed. Known leaks outside Relay's code are
# suppressed in Fuzz/suppressions/ (each entry says why). SANITIZE_SKIP: tests
# whose bounds assume an uninstrumented build (heap size, 1,000 connections
# within a 2 s HELLO timeout, RSS and close time of the write-stall flood, RSS of the zero-credit hoarder, of the wide fan-out over 4,096 topics and of 60,000 unacknowledged durables); `make sanitize SANITIZE_SKIP=` runs them too.
# Tests run one at a time (--no-parallel): on 2 cores, instrumented relayd
# children run side by side starve past the tests' event deadlines (a 15 s
# openssl wait, an audit repeat interval, the write-stall flood), which says
# nothing about memory or races; serially every test passes under both.
# docs/security.md ("Fuzzing and sanitizers") has the findings.
SANITIZE_FILTER ?= RelayTLSTests|RelayStoreTests|RelayBrokerTests
SANITIZE_SKIP ?= ScaleTests|stalledSubscriber|hugeLengthPrefixes|nonReadingFlood|zeroCreditSubscriptionsAreBounded|wideFanOutOverManyTopicsIsBounded|unacknowledgedDurablesAreForgotten
.PHONY: sanitize
sanitize: deps
	status=0; \
	rm -rf .build-asan/reports .build-tsan/reports; mkdir -p .build-asan/reports .build-tsan/reports; \
	SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=log_path=$(CURDIR)/.build-asan/reports/asan \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/Fuzz/suppressions/sanitize.lsan:print_suppressions=0 \
	  $(SWIFT) test --sanitize=address --scratch-path .build-asan --filter '$(SANITIZE_FILTER)' $(if $(SANITIZE_SKIP),--skip '$(SANITIZE_SKIP)') --no-parallel || status=1; \
	SWIFT_BACKTRACE=enable=no TSAN_OPTIONS="log_path=$(CURDIR)/.build-tsan/reports/tsan suppressions=$(CURDIR)/Fuzz/suppressions/sanitize.tsan" \
	  $(SWIFT) test --sanitize=thread --scratch-path .build-tsan --filter '$(SANITIZE_FILTER)' $(if $(SANITIZE_SKIP),--skip '$(SANITIZE_SKIP)') --no-parallel || status=1; \
	for report in .build-asan/reports/* .build-tsan/reports/*; do \
	  [ -f "$$report" ] || continue; echo "== $$report"; cat "$$report"; status=1; \
	done; \
	exit $$status

# Deliberate breakages (Tests/Mutants/mutants.list), one at a time in a
# scratch copy (.build-mutants), each with the tests that must fail on it;
# not part of `make test`. MUTANTS=id1,id2 runs some. docs/testing.md ("Mutants") has
# the last run's table; scripts/mutants.sh says how it works.
.PHONY: mutants
mutants: deps
	MUTANTS='$(MUTANTS)' SWIFT='$(SWIFT)' bash scripts/mutants.sh

bench-store: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product relay-bench-store && .build/release/relay-bench-store

bench-tls: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product relay-bench-tls && .build/release/relay-bench-tls

bench-wire: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product relay-bench-wire && .build/release/relay-bench-wire

# The policy figures of docs/security.md: the policy micro-benchmarks below.
bench-policy: deps
	$(MAKE) bench-micro BENCH_MICRO_ARGS="--filter 'policy.*'"

# The relay-bench-* targets above print the figures docs/ compares with targets.
# bench-micro: micro-benchmarks with ordo-one/benchmark, in their own package
# (Benchmarks/, which depends on this one by path; Benchmarks/Benchmarks/
# RelayMicroBenchmarks): codec, routing over 10k subscriptions, policy, store
# append, TLS bulk; time, throughput and allocations per operation
# (docs/performance.md). Release build (with the exclusivity flag of
# RELEASE_FLAGS, through the plugin's --Xswiftc), then ~1 min. Its build
# folder is Benchmarks/.build unless SCRATCH=.build-x (relative to Benchmarks/)
# names another. BENCH_MICRO_ARGS adds arguments: "--filter 'routing.*'"
# (a regex for the whole name) runs some; "baseline update NAME", later
# "baseline compare NAME", compares with a saved run (Benchmarks/
# .benchmarkBaselines/, not committed).
BENCH_MICRO_ARGS ?=
bench-micro: deps
	cd Benchmarks && $(SWIFT) package $(if $(SCRATCH),--scratch-path $(SCRATCH)) --disable-sandbox --allow-writing-to-package-directory \
	  benchmark --target RelayMicroBenchmarks --Xswiftc enforce-exclusivity=unchecked $(BENCH_MICRO_ARGS)

# The client library's documentation (DocC): the doc comments of RelayClient's
# public API and its catalog, Sources/RelayClient/RelayClient.docc, built with
# swift-docc-plugin (a dependency only this target uses) into
# .build/docs/RelayClient.doccarchive. Any DocC warning (a broken link, an
# unknown parameter) fails it. Open the archive with `xcrun docc preview` on
# a Mac, or serve it as a static site (DOCS_HOSTING_BASE=/path/ sets the
# base path; default: the site root).
.PHONY: docs
DOCS_OUTPUT := .build/docs/RelayClient.doccarchive
docs: deps
	@mkdir -p $(dir $(DOCS_OUTPUT))  # the plugin moves the archive there, into an existing folder only
	$(SWIFT) package --allow-writing-to-directory $(dir $(DOCS_OUTPUT)) generate-documentation \
	  --target RelayClient --output-path $(DOCS_OUTPUT) --warnings-as-errors \
	  --transform-for-static-hosting $(if $(DOCS_HOSTING_BASE),--hosting-base-path $(DOCS_HOSTING_BASE))
	@echo "documentation: $(DOCS_OUTPUT)"

# Soak and leak check (not part of `make test`): 2,000 connections of mixed
# traffic for 5 minutes, then 10,000 connect cycles, against the relayd built
# next to relay-soak. Shorter: make soak SOAK_ARGS="--seconds 60 --connections 500".
.PHONY: soak
SOAK_ARGS ?=
soak: deps
	$(SWIFT) build --product relayd && $(SWIFT) build --product relay-soak && .build/debug/relay-soak $(SOAK_ARGS)

# Relay beside Mosquitto and NATS (release build of relayctl bench, then the
# peer harness in PEERS_DIR, default ../shared/peers); see docs/performance.md.
# Knobs: N, SIZES, WINDOW, FANOUT, RELAY_DURABILITY, ... (scripts/bench-peers.sh).
bench-peers: deps
	bash scripts/bench-peers.sh

# Cluster mode (docs/cluster.md): 3 nats-server nodes with mTLS routes and 2
# relayd edges on the jetstream backend, on 127.0.0.1 with the dev PKI;
# prints the commands to try, Ctrl-C stops all (scripts/cluster.sh).
.PHONY: cluster bench-cluster
cluster: pki
	bash scripts/cluster.sh

# One edge next to direct nats.c publishing into the same R3 stream, in the
# same run: acked msg/s and p99 publish->ack of both (scripts/bench-cluster.sh;
# knobs N, SIZE, WINDOW, ROUNDS).
bench-cluster: deps
	bash scripts/bench-cluster.sh

clean:
	rm -rf .build .build-* Benchmarks/.build
