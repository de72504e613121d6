#!/usr/bin/env bash
# Builds the frame-decoder fuzz target with libFuzzer + ASan and runs it for
# $1 seconds (default 60). Seeds: Protocol/vectors plus the kept corpus in
# Fuzz/corpus/frame-decoder. Crash inputs land in .build-fuzz/artifacts/.
# FUZZ_UPDATE_CORPUS=1 merges what the run found into the kept corpus
# (minimised: only inputs that add coverage).
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# FUZZ_BUILD_ONLY=1 / FUZZ_SKIP_BUILD=1: as in fuzz-common.sh.
if [ "${FUZZ_SKIP_BUILD:-0}" != "1" ]; then
    swift build -c release --scratch-path .build-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DRELAY_FUZZ \
        --product relay-fuzz-frame-decoder
fi
[ "${FUZZ_BUILD_ONLY:-0}" = "1" ] && exit 0
bin=".build-fuzz/release/relay-fuzz-frame-decoder"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" .build-fuzz/artifacts
python3 Fuzz/seed-corpus.py Protocol/vectors "$work/corpus"
cp Fuzz/corpus/frame-decoder/* "$work/corpus/" 2>/dev/null || true

# The Swift crash handler would fight the sanitizer's; libFuzzer reports.
export SWIFT_BACKTRACE=enable=no
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=2000000 -timeout=10 \
    -print_final_stats=1 -artifact_prefix=.build-fuzz/artifacts/ "$work/corpus"

if [ "${FUZZ_UPDATE_CORPUS:-0}" = "1" ]; then
    "$bin" -merge=1 -max_len=2000000 Fuzz/corpus/frame-decoder "$work/corpus"
fi
