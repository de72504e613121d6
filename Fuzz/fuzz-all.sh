#!/usr/bin/env bash
# make fuzz: builds every Fuzz/run-*.sh target (one at a time: they share
# .build-fuzz), then fuzzes FUZZ_JOBS of them at a time (default 2) for $1
# seconds each (default 60). libFuzzer runs one process on one core, so on
# the 2-core CI machine two targets side by side each still have a core for
# their whole time: the same fuzzing in half the wall-clock time
# (docs/testing.md, "CI time"). Each target's output is printed when it
# ends, in order; a failing batch (crash or leak) stops the run, naming the
# target, with the input in .build-fuzz/artifacts/.
set -uo pipefail
seconds="${1:-60}"
jobs="${FUZZ_JOBS:-2}"
cd "$(dirname "$0")/.."

scripts=(Fuzz/run-*.sh)
for script in "${scripts[@]}"; do
    FUZZ_BUILD_ONLY=1 bash "$script" || { echo "make fuzz: building the target of $script failed" >&2; exit 1; }
done

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=""
next=0
while [ "$next" -lt "${#scripts[@]}" ] && [ -z "$failed" ]; do
    batch=()
    pids=()
    while [ "${#batch[@]}" -lt "$jobs" ] && [ "$next" -lt "${#scripts[@]}" ]; do
        script="${scripts[$next]}"
        FUZZ_SKIP_BUILD=1 bash "$script" "$seconds" >"$logs/$next.log" 2>&1 &
        pids+=("$!")
        batch+=("$next")
        next=$((next + 1))
    done
    for k in "${!batch[@]}"; do
        index="${batch[$k]}"
        status=0
        wait "${pids[$k]}" || status=$?
        echo "=== ${scripts[$index]} $seconds s: exit $status"
        cat "$logs/$index.log"
        [ "$status" -eq 0 ] || failed="$failed ${scripts[$index]}"
    done
done
if [ -n "$failed" ]; then
    echo "make fuzz:$failed failed (crash or leak; the input is in .build-fuzz/artifacts/)" >&2
    exit 1
fi
