#!/usr/bin/env bash
# mutants.sh - show that the tests bite (`make mutants`, issue 15).
#
# Applies, one at a time, the deliberate breakages listed in
# Tests/Mutants/mutants.list to a scratch copy of the tree, builds it, runs the
# tests named for that mutant, and reports:
#   KILLED    the tests failed (or hung past MUTANTS_TIMEOUT): they bite;
#   SURVIVED  the tests passed with the breakage in: a hole in the suite;
#   BROKEN    the mutant did not apply (snippet missing or not unique) or did
#             not compile: the list needs updating. Never counted as a kill.
#   PENDING   the entry has no breakage yet (its `pending:` says why).
# It prints a table at the end (also written to .build-mutants/report.md) and
# exits non-zero if any mutant survived or was broken.
#
# Before the mutants, a baseline run builds the unmutated copy and runs every
# selected filter once: each must pass and run at least one test, or a
# "kill" would prove nothing (MUTANTS_BASELINE=0 skips it).
#
# The developer's tree is never modified. The scratch copy is
# .build-mutants/src, made from the working tree (tracked and untracked,
# not ignored, files: uncommitted edits included) and kept between runs with
# its own SwiftPM scratch path, .build-mutants/build, so runs after the first
# rebuild only what changed. Only files whose content differs are rewritten,
# and a mutated file is restored (with a new mtime, so the next build
# recompiles it) after its mutant and on any exit (trap).
#
# Every build and test takes the shared build lock (/tmp/relay-build.lock),
# once per mutant, so other builds interleave between mutants.
#
# Knobs (environment):
#   MUTANTS=id1,id2      run only these mutants (default: all)
#   MUTANTS_LIST         the list (default Tests/Mutants/mutants.list)
#   MUTANTS_DIR          scratch directory (default .build-mutants)
#   MUTANTS_BASELINE=0   skip the baseline run
#   MUTANTS_TIMEOUT=900  seconds a test run may take; past it the mutant
#                        counts as KILLED (timeout) - a hang is a failure
#   SWIFT=swift          the swift driver
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIST="${MUTANTS_LIST:-$ROOT/Tests/Mutants/mutants.list}"
WORK="${MUTANTS_DIR:-$ROOT/.build-mutants}"
SRC="$WORK/src"
SCRATCH="$WORK/build"
LOGS="$WORK/logs"
LOCK="${RELAY_BUILD_LOCK:-/tmp/relay-build.lock}"
SWIFT="${SWIFT:-swift}"
TIMEOUT="${MUTANTS_TIMEOUT:-900}"
SELECTED="${MUTANTS:-}"

die() { echo "mutants: $*" >&2; exit 2; }

# ---------------------------------------------------------------- the list
# Blocks of `key: value` lines, one block per mutant, starting at `id:`.
# `#` lines are comments. In find/replace, `\n` stands for a line break.
ids=() whats=() files=() finds=() replaces=() patches=() kills=() pendings=()
parse_list() {
    local line key value n=-1 lineno=0
    [[ -f "$LIST" ]] || die "no mutant list at $LIST"
    while IFS= read -r line || [[ -n "$line" ]]; do
        lineno=$((lineno + 1))
        [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
        [[ "$line" =~ ^([a-z]+):(.*)$ ]] || die "$LIST:$lineno: expected 'key: value', got: $line"
        key="${BASH_REMATCH[1]}"
        value="${BASH_REMATCH[2]}"
        value="${value#"${value%%[![:space:]]*}"}"   # drop the alignment spaces
        if [[ "$key" == id ]]; then
            n=$((n + 1))
            ids[n]="$value" whats[n]="" files[n]="" finds[n]="" replaces[n]="" patches[n]="" kills[n]="" pendings[n]=""
            continue
        fi
        ((n >= 0)) || die "$LIST:$lineno: '$key' before the first 'id:'"
        value="${value//\\n/$'\n'}"
        case "$key" in
            what) whats[n]="$value" ;;
            file) files[n]="$value" ;;
            find) finds[n]="$value" ;;
            replace) replaces[n]="$value" ;;
            patch) patches[n]="$value" ;;
            kill) kills[n]="$value" ;;
            pending) pendings[n]="$value" ;;
            *) die "$LIST:$lineno: unknown key '$key' (id, what, file, find, replace, patch, kill, pending)" ;;
        esac
    done <"$LIST"
    local i
    for i in "${!ids[@]}"; do
        [[ -n "${whats[i]}" ]] || die "mutant ${ids[i]}: no 'what:'"
        [[ -n "${pendings[i]}" ]] && continue
        [[ -n "${kills[i]}" ]] || die "mutant ${ids[i]}: no 'kill:' (the test filter that must fail)"
        if [[ -n "${patches[i]}" ]]; then
            [[ -f "$ROOT/${patches[i]}" ]] || die "mutant ${ids[i]}: no patch file ${patches[i]}"
        else
            [[ -n "${files[i]}" && -n "${finds[i]}" ]] || die "mutant ${ids[i]}: needs 'file:' and 'find:' (or 'patch:')"
        fi
    done
}

# ------------------------------------------------------ the scratch copy
# Brings $SRC to the content of the working tree, rewriting only files whose
# content differs (unchanged files keep their mtime: incremental builds).
sync_scratch() {
    mkdir -p "$SRC" "$LOGS"
    local wanted present
    wanted="$(mktemp)" present="$(mktemp)"
    (cd "$ROOT" && { git ls-files -co --exclude-standard; [[ -f Package.resolved ]] && echo Package.resolved; true; } | sort -u) >"$wanted"
    (cd "$SRC" && find . -type f | sed 's|^\./||' | sort) >"$present"
    local path
    while IFS= read -r path; do
        [[ -f "$ROOT/$path" ]] || continue   # deleted in the working tree, not yet in git
        if ! cmp -s "$ROOT/$path" "$SRC/$path"; then
            mkdir -p "$(dirname "$SRC/$path")"
            cp "$ROOT/$path" "$SRC/$path"
        fi
    done <"$wanted"
    comm -13 "$wanted" "$present" | while IFS= read -r path; do rm -f "$SRC/$path"; done
    rm -f "$wanted" "$present"
    # First run: reuse the resolved dependency checkouts of the tree's .build
    # (they do not depend on the path; the compiled modules do, so those are
    # built afresh once).
    if [[ ! -d "$SCRATCH/checkouts" && -d "$ROOT/.build/checkouts" ]]; then
        mkdir -p "$SCRATCH"
        cp -a "$ROOT/.build/checkouts" "$ROOT/.build/repositories" "$ROOT/.build/workspace-state.json" "$SCRATCH/" 2>/dev/null || true
    fi
}

# The files currently mutated in $SRC, and their original content (the same
# relative paths under $originals).
mutated=() originals="$WORK/original"
keep_original() {   # $1: a path relative to $SRC, before it is changed
    mkdir -p "$originals/$(dirname "$1")"
    cp "$SRC/$1" "$originals/$1"
    mutated+=("$1")
}
restore() {
    local file
    for file in "${mutated[@]}"; do
        cat "$originals/$file" >"$SRC/$file"   # rewrite: a new mtime, so the next build recompiles it
    done
    mutated=()
}
trap restore EXIT
trap 'restore; exit 130' INT TERM

# Applies mutant $1 to $SRC; returns 1 with the reason in $why if it does not
# apply. (Not run in a subshell: restore needs $mutated.)
why=""
apply_mutant() {
    local i="$1"
    if [[ -n "${patches[i]}" ]]; then
        # A breakage may need several files (e.g. two layers of one check).
        local target targets
        targets="$(sed -n 's|^+++ b/||p' "$ROOT/${patches[i]}")"
        [[ -n "$targets" ]] || { why="patch ${patches[i]} names no file"; return 1; }
        for target in $targets; do
            [[ -f "$SRC/$target" ]] || { why="patch ${patches[i]} names $target, not a file of the tree"; return 1; }
        done
        for target in $targets; do keep_original "$target"; done
        patch -p1 --forward --batch --silent --no-backup-if-mismatch -r - -d "$SRC" <"$ROOT/${patches[i]}" \
            || { why="patch ${patches[i]} does not apply"; return 1; }
        return 0
    fi
    local file="${files[i]}" find="${finds[i]}" replace="${replaces[i]}" content rest
    [[ -f "$SRC/$file" ]] || { why="no file $file"; return 1; }
    content="$(<"$SRC/$file")"
    rest="${content#*"$find"}"
    [[ "$rest" != "$content" ]] || { why="snippet not found in $file: $find"; return 1; }
    [[ "$rest" != *"$find"* ]] || { why="snippet occurs more than once in $file: $find"; return 1; }
    keep_original "$file"
    printf '%s\n' "${content/"$find"/"$replace"}" >"$SRC/$file"
    ! cmp -s "$originals/$file" "$SRC/$file" || { why="the replacement leaves $file unchanged"; return 1; }
}

# Build and test under the lock; fd 9 holds it, children inherit neither fd.
exec 9>>"$LOCK"
build() {   # $1: log file
    "$SWIFT" build --build-tests --package-path "$SRC" --scratch-path "$SCRATCH" >"$1" 2>&1 8>&- 9>&-
}
run_tests() {   # $1: filter, $2: log file; returns the test run's status (124: timeout)
    local status=0
    timeout --kill-after=30 "$TIMEOUT" "$SWIFT" test --skip-build --package-path "$SRC" --scratch-path "$SCRATCH" \
        --filter "$1" >"$2" 2>&1 8>&- 9>&- || status=$?
    return "$status"
}
# swift-testing's summary line; a filter that selects nothing proves nothing.
tests_ran() { grep -Eq 'Test run with [1-9][0-9]* tests?' "$1"; }

# ------------------------------------------------------------------ main
parse_list
run=()
if [[ -n "$SELECTED" ]]; then
    IFS=',' read -r -a wanted_ids <<<"$SELECTED"
    for want in "${wanted_ids[@]}"; do
        found=""
        for i in "${!ids[@]}"; do [[ "${ids[i]}" == "$want" ]] && found="$i"; done
        [[ -n "$found" ]] || die "no mutant '$want' in $LIST (known: ${ids[*]})"
        run+=("$found")
    done
else
    run=("${!ids[@]}")
fi

# One run at a time per scratch directory (fd 8; the build lock is fd 9).
mkdir -p "$WORK"
exec 8>>"$WORK/run.lock"
flock -n 8 || die "another mutants run is using $WORK; wait for it, or set MUTANTS_DIR"

echo "mutants: syncing the scratch copy $SRC"
sync_scratch
started=$SECONDS

if [[ "${MUTANTS_BASELINE:-1}" != 0 ]]; then
    echo "mutants: baseline (unmutated) build and tests, waiting for the build lock"
    flock 9
    t0=$SECONDS
    build "$LOGS/baseline-build.log" || { flock -u 9; tail -30 "$LOGS/baseline-build.log"; die "the unmutated tree does not build (log: $LOGS/baseline-build.log)"; }
    failed=()
    for i in "${run[@]}"; do
        [[ -n "${pendings[i]}" ]] && continue
        log="$LOGS/baseline-${ids[i]}.log"
        if ! run_tests "${kills[i]}" "$log" || ! tests_ran "$log"; then failed+=("${ids[i]}"); fi
    done
    flock -u 9
    echo "mutants: baseline took $((SECONDS - t0)) s"
    if ((${#failed[@]})); then
        for id in "${failed[@]}"; do echo "mutants: baseline: the tests of '$id' fail or select nothing without any mutant: $LOGS/baseline-$id.log" >&2; done
        die "a kill would prove nothing while the baseline fails; fix the tests or the filters first"
    fi
fi

results=() times=() notes=()
for i in "${run[@]}"; do
    id="${ids[i]}"
    if [[ -n "${pendings[i]}" ]]; then
        results[i]=PENDING times[i]=0 notes[i]="${pendings[i]}"
        echo "mutants: $id: PENDING (${pendings[i]})"
        continue
    fi
    echo "mutants: $id: ${whats[i]}"
    if ! apply_mutant "$i"; then
        restore
        results[i]=BROKEN times[i]=0 notes[i]="does not apply: $why"
        echo "mutants: $id: BROKEN: $why"
        continue
    fi
    flock 9
    t0=$SECONDS
    if ! build "$LOGS/$id-build.log"; then
        flock -u 9
        restore
        results[i]=BROKEN times[i]=$((SECONDS - t0)) notes[i]="does not compile: $LOGS/$id-build.log"
        echo "mutants: $id: BROKEN: does not compile"
        grep -E 'error:' "$LOGS/$id-build.log" | head -5 || true
        continue
    fi
    status=0
    run_tests "${kills[i]}" "$LOGS/$id-test.log" || status=$?
    flock -u 9
    restore
    times[i]=$((SECONDS - t0))
    if ((status == 124 || status == 137)); then
        results[i]=KILLED notes[i]="timeout after ${TIMEOUT} s"
    elif ((status != 0)); then
        results[i]=KILLED notes[i]="$(grep -m1 -E '✘ Test .* (failed|recorded an issue)' "$LOGS/$id-test.log" | sed 's/^[^A-Za-z]*//' | cut -c1-160 || true)"
    else
        results[i]=SURVIVED notes[i]="the tests passed with the breakage in"
    fi
    echo "mutants: $id: ${results[i]} in ${times[i]} s${notes[i]:+ - ${notes[i]}}"
done

# ----------------------------------------------------------------- table
report="$WORK/report.md"
{
    echo "| id | breakage | killing tests (--filter) | result | time (s) |"
    echo "|----|----------|--------------------------|--------|----------|"
    for i in "${run[@]}"; do
        kill="${kills[i]:+\`${kills[i]//|/\\|}\`}"   # a | in the regex would end the cell
        echo "| ${ids[i]} | ${whats[i]} | ${kill:--} | ${results[i]} | ${times[i]} |"
    done
    echo
    echo "Total: $((SECONDS - started)) s (build lock waits included), $(date -u '+%Y-%m-%d %H:%M UTC'), $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD || echo ' + uncommitted changes')."
} >"$report"
echo
cat "$report"
bad=0
for i in "${run[@]}"; do
    case "${results[i]}" in
        SURVIVED | BROKEN) bad=$((bad + 1)); echo "mutants: ${ids[i]} ${results[i]}: ${notes[i]}" >&2 ;;
        KILLED) echo "mutants: ${ids[i]} killed by: ${notes[i]}" ;;
    esac
done
((bad == 0)) || { echo "mutants: $bad mutant(s) survived or broken; logs in $LOGS" >&2; exit 1; }
echo "mutants: every mutant that ran was killed; logs in $LOGS"
