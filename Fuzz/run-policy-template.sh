#!/usr/bin/env bash
# Builds the policy-template fuzz target (relay-fuzz-policy-template) with
# libFuzzer + ASan and runs it for $1 seconds (default 60). Inputs are
# key=value identity and rule lines. Seeds: seed-policy.py (rules of
# config/relay.toml and docs, clean and hostile attribute values), plus the
# kept corpus in Fuzz/corpus/policy-template. Crash inputs land in
# .build-fuzz/artifacts/. FUZZ_UPDATE_CORPUS=1 merges what the run found into
# the kept corpus.
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source Fuzz/fuzz-common.sh
run_fuzz_target relay-fuzz-policy-template policy-template "$seconds" 4096 python3 Fuzz/seed-policy.py .
