#!/usr/bin/env bash
# Builds the config-parser fuzz target (relay-fuzz-config-parser) with
# libFuzzer + ASan and runs it for $1 seconds (default 60). Inputs are TOML
# config text. Seeds: seed-config.py (config/relay.toml, docs and ConfigTests
# TOML), plus the kept corpus in Fuzz/corpus/config-parser. Crash inputs land
# in .build-fuzz/artifacts/. FUZZ_UPDATE_CORPUS=1 merges what the run found
# into the kept corpus.
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source Fuzz/fuzz-common.sh
# TOMLKit leaks every parsed document (Fuzz/suppressions/config-parser.lsan),
# about 2 KiB an input, so the process grows ~3 MiB/s: room for ~20 minutes.
export FUZZ_RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-6144}"
run_fuzz_target relay-fuzz-config-parser config-parser "$seconds" 65536 python3 Fuzz/seed-config.py .
