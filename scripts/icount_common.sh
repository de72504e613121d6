# icount_common.sh - what scripts/icount.sh, icount_client.sh and
# icount_connect.sh share: sourced by them, not run. Each caller sets NAME
# (its name in messages) and HERE (the scripts folder) before sourcing it.
#
# Why the stripped copies and the sigsuspend shim: docs/performance-history.md,
# "Instruction counts (wave 6)".

die() { printf '%s: %s\n' "$NAME" "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

# The tools every count needs, and the count options' values.
icount_preflight() { # N RUNS
  local tool
  for tool in valgrind cc python3 strip; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install valgrind gcc python3 binutils)"
  done
  [[ "$1" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not $1"
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not $2"
}

# An absolute path for an executable argument.
icount_absolute() { # a missing folder: the path as given, for the error message that follows
  if [ -d "$(dirname "$1")" ]; then printf '%s/%s\n' "$(cd "$(dirname "$1")" && pwd)" "$(basename "$1")"; else printf '%s\n' "$1"; fi
}

# Sets RELAYD and RELAYCTL (absolute) from the positional arguments RELAYD
# [RELAYCTL] (default: the relayctl beside relayd) and checks both run;
# exits with the usage on a wrong count.
icount_relayd_relayctl() {
  [ "$#" -ge 1 ] && [ "$#" -le 2 ] || usage 64
  RELAYD="$(icount_absolute "$1")"
  RELAYCTL="$(icount_absolute "${2:-$(dirname "$RELAYD")/relayctl}")"
  [ -x "$RELAYD" ] || die "relayd is not an executable at $RELAYD"
  [ -x "$RELAYCTL" ] || die "relayctl is not an executable at $RELAYCTL; pass it as the second argument"
}

# DEMANGLER: swift-demangle from PATH or next to `swift`; empty without it.
icount_find_demangler() {
  DEMANGLER="$(command -v swift-demangle || true)"
  if [ -z "$DEMANGLER" ] && command -v swift >/dev/null; then
    DEMANGLER="$(dirname "$(readlink -f "$(command -v swift)")")/swift-demangle"
    [ -x "$DEMANGLER" ] || DEMANGLER=""
  fi
}

# WORK (a new temporary folder) and OUT (where profiles and reports go:
# KEEP, made absolute, or WORK). The caller sets its own EXIT trap.
icount_workdir() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX")"
  # Absolute: relayd (under valgrind) writes its profile there from its own working directory.
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && KEEP="$(cd "$KEEP" && pwd)"; fi
  OUT="${KEEP:-$WORK}"
}

# A copy of executable $1 without debug information at $WORK/$2: valgrind
# 3.19 cannot read the DWARF 5 of Swift 6 binaries ("unhandled dwarf2 abbrev
# form code 0x25") and gives up on the whole object; the symbol table is all
# callgrind needs for function names. Also builds the sigsuspend shim once.
icount_stripped() { # executable name
  strip --strip-debug -o "$WORK/$2" "$1"
  [ -f "$WORK/icount_sigsuspend.so" ] || cc -shared -fPIC -O2 -o "$WORK/icount_sigsuspend.so" "$HERE/icount_sigsuspend.c"
}

# $WORK/relayd-under-callgrind: what `relayctl bench --relayd` starts instead
# of relayd (with --config/--init); runs the stripped $WORK/relayd under
# callgrind, its profile named by ICOUNT_PROFILE (inherited from relayctl's
# environment). $1: extra callgrind options (e.g. --toggle-collect=...).
icount_relayd_wrapper() {
  cat > "$WORK/relayd-under-callgrind" <<WRAP
#!/usr/bin/env bash
LD_PRELOAD="$WORK/icount_sigsuspend.so" exec valgrind --tool=callgrind --collect-systime=yes ${1:-} \\
  --callgrind-out-file="\$ICOUNT_PROFILE" --log-file="\$ICOUNT_PROFILE.valgrind.log" "$WORK/relayd" "\$@"
WRAP
  chmod +x "$WORK/relayd-under-callgrind"
}

# Fails unless callgrind finished writing profile $1.
icount_check_profile() {
  grep -q '^summary:\|^totals:' "$1" 2>/dev/null \
    || die "no complete profile at $1 (the process killed before callgrind wrote it?); valgrind said: $(tail -5 "$1.valgrind.log" 2>/dev/null)"
}

# The median round of report.$KEY.<round>.json in $OUT, its range, the
# medians (and ranges) of malloc/swift_retain/swift_release calls per unit
# over the rounds, then the median round's tables. $1 KEY ("" for report.<round>), $2 RUNS, $3 the line's
# head (e.g. "icount fsync: relayd"), $4 the unit (msg, handshake).
icount_summary() {
  python3 - "$OUT" "$1" "$2" "$3" "$4" <<'PY'
import json, sys
out, key, runs, head, unit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
name = lambda r, ext: f"{out}/report.{key + '.' if key else ''}{r}.{ext}"
rows = sorted((json.load(open(name(r, "json")))["ir_per_msg"], r) for r in range(1, runs + 1))
values = [v for v, _ in rows]
median, median_round = rows[len(rows) // 2]
spread = 100 * (values[-1] - values[0]) / median
print(f"{head} {median:,.0f} Ir/{unit} median of {runs} "
      f"(range {values[0]:,.0f}-{values[-1]:,.0f}, spread {spread:.2f} %); tables of round {median_round}:")
calls = [json.load(open(name(r, "json"))).get("calls_per_msg", {}) for r in range(1, runs + 1)]
marks = [m for m in ("malloc calls", "swift_retain calls", "swift_release calls") if all(m in c for c in calls)]
if marks:
    def med(m):
        v = sorted(c[m] for c in calls)
        return f"{m} {v[len(v) // 2]:.3g} ({v[0]:.3g}-{v[-1]:.3g})"
    print(f"  medians per {unit} over the {runs} rounds (range): " + ", ".join(med(m) for m in marks))
print(open(name(median_round, "txt")).read())
PY
}
