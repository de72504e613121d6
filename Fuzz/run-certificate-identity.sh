#!/usr/bin/env bash
# Builds the certificate-identity fuzz target
# (relay-fuzz-certificate-identity) with libFuzzer + ASan and runs it for $1
# seconds (default 60). Inputs are DER certificates. Seeds: seed-der.sh
# (openssl-made certificates with every field IdentityExtractor reads), plus
# the kept corpus in Fuzz/corpus/certificate-identity. Crash inputs land in
# .build-fuzz/artifacts/. FUZZ_UPDATE_CORPUS=1 merges what the run found into
# the kept corpus.
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source Fuzz/fuzz-common.sh
run_fuzz_target relay-fuzz-certificate-identity certificate-identity "$seconds" 16384 bash Fuzz/seed-der.sh
