# Sourced by the run-*.sh scripts of the config-parser, policy-template and
# certificate-identity targets; the same steps as run-frame-decoder.sh.
# run_fuzz_target PRODUCT CORPUS SECONDS MAX_LEN SEED_COMMAND...
#   Builds PRODUCT with libFuzzer + ASan into .build-fuzz, seeds a temporary
#   corpus with SEED_COMMAND (called with the folder to write to appended)
#   plus the kept corpus in Fuzz/corpus/CORPUS, and fuzzes for SECONDS.
#   Uses Fuzz/dict/CORPUS.dict and Fuzz/suppressions/CORPUS.lsan when
#   present. FUZZ_RSS_LIMIT_MB (default 2048) is libFuzzer's memory limit.
#   Crash inputs land in
#   .build-fuzz/artifacts/. FUZZ_BUILD_ONLY=1 only builds; FUZZ_SKIP_BUILD=1
#   fuzzes what is built (make fuzz builds every target first, then fuzzes
#   two at a time: Fuzz/run-all.sh). FUZZ_UPDATE_CORPUS=1 merges what the run found
#   into the kept corpus (minimised: only inputs that add coverage).
run_fuzz_target() {
    local product="$1" corpus="$2" seconds="$3" max_len="$4"
    shift 4
    if [ "${FUZZ_SKIP_BUILD:-0}" != "1" ]; then
        swift build -c release --scratch-path .build-fuzz \
            -Xswiftc -sanitize=fuzzer,address -Xswiftc -DRELAY_FUZZ \
            --product "$product"
    fi
    [ "${FUZZ_BUILD_ONLY:-0}" = "1" ] && return 0
    local bin=".build-fuzz/release/$product"

    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand $work now: it is local
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/corpus" .build-fuzz/artifacts "Fuzz/corpus/$corpus"
    "$@" "$work/corpus"
    cp "Fuzz/corpus/$corpus"/* "$work/corpus/" 2>/dev/null || true

    local dict=()
    [ -f "Fuzz/dict/$corpus.dict" ] && dict=(-dict="Fuzz/dict/$corpus.dict")
    # Known leaks in dependencies (see the file) are suppressed per target.
    if [ -f "Fuzz/suppressions/$corpus.lsan" ]; then
        export LSAN_OPTIONS="suppressions=$PWD/Fuzz/suppressions/$corpus.lsan:print_suppressions=0"
    fi
    # The Swift crash handler would fight the sanitizer's; libFuzzer reports.
    export SWIFT_BACKTRACE=enable=no
    "$bin" -max_total_time="$seconds" -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}" -max_len="$max_len" -timeout=10 \
        -print_final_stats=1 -artifact_prefix=.build-fuzz/artifacts/ "${dict[@]}" "$work/corpus"

    if [ "${FUZZ_UPDATE_CORPUS:-0}" = "1" ]; then
        "$bin" -merge=1 -max_len="$max_len" "${dict[@]}" "Fuzz/corpus/$corpus" "$work/corpus"
    fi
}
