#!/usr/bin/env bash
# icount_connect.sh - instructions per full mTLS handshake + HELLO/WELCOME (callgrind), relayd and client.
#
#   scripts/icount_connect.sh [options] RELAYD [RELAYCTL]
#
# The workload is the handshake target's: `relayctl bench connect
# --concurrency 8 --durability fsync` (TCP + TLS 1.3 with a client
# certificate, no resumption, HELLO/WELCOME, close), run with N and with 2N
# connections, so
#   Ir per handshake = (Ir(2N) - Ir(N)) / N
# (start-up, PKI, contexts and shutdown cancel out). One side at a time runs
# under `valgrind --tool=callgrind`, the other natively:
#   relayd: the bench starts relayd through a wrapper that runs it under
#           callgrind (as scripts/icount.sh does); the client is native.
#   client: relayctl bench connect runs under callgrind (with the
#           icount_sigsuspend shim) against a native `relayctl bench serve`
#           (the same relayd configuration the bench starts itself).
# Prints one line per round and side, the median and range per side, and the
# tables of the median round (scripts/icount_report.py), including every
# function whose name matches --match (default: Relay's own modules), with its
# inclusive Ir and calls per handshake: where Relay's own code goes.
#
# Options (or environment):
#   --count N      (ICOUNT_N, default 200)        connections of the small run; the big one has 2N
#   --runs R       (ICOUNT_RUNS, default 3)       rounds per side
#   --sides "..."  (ICOUNT_SIDES, default "relayd client")
#   --top K        (ICOUNT_TOP, default 25)       rows of the tables
#   --match RE     (ICOUNT_MATCH)                 functions to list in full (Python regex, demangled names)
#   --keep DIR     keep the profiles and reports in DIR
#
# Needs valgrind, cc, python3, strip; swift-demangle for readable names.
# docs/performance.md, "mTLS handshakes (wave 15)".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${ICOUNT_N:-200}"
RUNS="${ICOUNT_RUNS:-3}"
SIDES="${ICOUNT_SIDES:-relayd client}"
TOP="${ICOUNT_TOP:-25}"
MATCH="${ICOUNT_MATCH:-Relay(Broker|Core|TLS|Policy|Wire|Client|Bench)|relayd|relayctl}"
KEEP=""

die() { printf 'icount_connect: %s\n' "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit "${1:-0}"; }

ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) N="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --sides) SIDES="$2"; shift 2 ;;
    --top) TOP="$2"; shift 2 ;;
    --match) MATCH="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ "${#ARGS[@]}" -ge 1 ] && [ "${#ARGS[@]}" -le 2 ] || usage 64
RELAYD="$(cd "$(dirname "${ARGS[0]}")" && pwd)/$(basename "${ARGS[0]}")"
RELAYCTL="${ARGS[1]:-$(dirname "$RELAYD")/relayctl}"
RELAYCTL="$(cd "$(dirname "$RELAYCTL")" && pwd)/$(basename "$RELAYCTL")"
[ -x "$RELAYD" ] || die "relayd is not an executable at $RELAYD"
[ -x "$RELAYCTL" ] || die "relayctl is not an executable at $RELAYCTL; pass it as the second argument"
for tool in valgrind cc python3 strip; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install valgrind gcc python3 binutils)"
done
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "--count must be a positive integer, not $N"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not $RUNS"
for side in $SIDES; do [[ "$side" == relayd || "$side" == client ]] || die "--sides takes relayd and/or client, not $side"; done
DEMANGLER="$(command -v swift-demangle || true)"
if [ -z "$DEMANGLER" ] && command -v swift >/dev/null; then
  DEMANGLER="$(dirname "$(readlink -f "$(command -v swift)")")/swift-demangle"
  [ -x "$DEMANGLER" ] || DEMANGLER=""
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/icount_connect.XXXXXX")"
SERVE=""
cleanup() {
  if [ -n "$SERVE" ]; then kill "$SERVE" 2>/dev/null || true; wait "$SERVE" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && KEEP="$(cd "$KEEP" && pwd)"; fi
OUT="${KEEP:-$WORK}"

# valgrind 3.19 cannot read Swift 6's DWARF 5 (see icount.sh): stripped copies.
strip --strip-debug -o "$WORK/relayd" "$RELAYD"
strip --strip-debug -o "$WORK/relayctl" "$RELAYCTL"
cc -shared -fPIC -O2 -o "$WORK/icount_sigsuspend.so" "$HERE/icount_sigsuspend.c"
cat > "$WORK/relayd-under-callgrind" <<WRAP
#!/usr/bin/env bash
LD_PRELOAD="$WORK/icount_sigsuspend.so" exec valgrind --tool=callgrind --collect-systime=yes \\
  --callgrind-out-file="\$ICOUNT_PROFILE" --log-file="\$ICOUNT_PROFILE.valgrind.log" "$WORK/relayd" "\$@"
WRAP
chmod +x "$WORK/relayd-under-callgrind"

check_profile() {
  grep -q '^summary:\|^totals:' "$1" 2>/dev/null || die "no complete profile at $1: $(tail -5 "$1.valgrind.log" 2>/dev/null)"
}

run_relayd() { # count profile
  if ! ICOUNT_PROFILE="$2" "$RELAYCTL" bench connect --relayd "$WORK/relayd-under-callgrind" --durability fsync \
      --count "$1" --concurrency 8 --timeout 900 --work-dir "$WORK" >"$2.bench.log" 2>&1; then
    cat "$2.bench.log" >&2
    die "the bench failed (relayd side, --count $1); its output is above"
  fi
  check_profile "$2"
}

serve_started=0
start_serve() {
  "$RELAYCTL" bench serve --relayd "$RELAYD" --durability fsync --work-dir "$WORK" >"$WORK/serve.json" 2>"$WORK/serve.log" &
  SERVE=$!
  for _ in $(seq 1 200); do [ -s "$WORK/serve.json" ] && break; sleep 0.1; done
  [ -s "$WORK/serve.json" ] || die "relayctl bench serve did not start: $(cat "$WORK/serve.log")"
  eval "$(python3 -c 'import json, shlex, sys; d = json.load(open(sys.argv[1]))
for k in ("port", "ca", "cert", "key"): print(f"SERVE_{k.upper()}={shlex.quote(str(d[k]))}")' "$WORK/serve.json")"
  serve_started=1
}

run_client() { # count profile
  [ "$serve_started" = 1 ] || start_serve
  if ! LD_PRELOAD="$WORK/icount_sigsuspend.so" valgrind --tool=callgrind --trace-children=no \
      --callgrind-out-file="$2" --log-file="$2.valgrind.log" \
      "$WORK/relayctl" bench connect --server "127.0.0.1:$SERVE_PORT" --cert "$SERVE_CERT" --key "$SERVE_KEY" \
      --ca "$SERVE_CA" --count "$1" --concurrency 8 --timeout 900 >"$2.bench.log" 2>&1; then
    cat "$2.bench.log" >&2
    die "the bench failed (client side, --count $1); its output is above"
  fi
  check_profile "$2"
}

echo "icount_connect: relayd $RELAYD, relayctl $RELAYCTL, $(valgrind --version)"
echo "icount_connect: relayctl bench connect --concurrency 8 --durability fsync, N=$N and 2N=$((2 * N)); $RUNS rounds of: $SIDES"
for round in $(seq 1 "$RUNS"); do
  for side in $SIDES; do
    small="$OUT/callgrind.out.$side.$round.n$N"
    big="$OUT/callgrind.out.$side.$round.n$((2 * N))"
    "run_$side" "$N" "$small"
    "run_$side" "$((2 * N))" "$big"
    proc=relayd; [ "$side" = client ] && proc=relayctl
    python3 "$HERE/icount_report.py" ${DEMANGLER:+--demangler "$DEMANGLER"} --top "$TOP" --unit handshake \
      --process "$proc" --match "$MATCH" --inside SSL_do_handshake --json "$OUT/report.$side.$round.json" "$side round $round" "$N" "$small" "$big" \
      >"$OUT/report.$side.$round.txt"
    head -1 "$OUT/report.$side.$round.txt"
  done
done

echo
for side in $SIDES; do
  python3 - "$OUT" "$side" "$RUNS" <<'PY'
import json, sys
out, side, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = sorted((json.load(open(f"{out}/report.{side}.{r}.json"))["ir_per_msg"], r) for r in range(1, runs + 1))
values = [v for v, _ in rows]
median, median_round = rows[len(rows) // 2]
print(f"icount_connect {side}: {median:,.0f} Ir/handshake median of {runs} "
      f"(range {values[0]:,.0f}-{values[-1]:,.0f}); tables of round {median_round}:")
print(open(f"{out}/report.{side}.{median_round}.txt").read())
PY
done
[ -n "$KEEP" ] && echo "icount_connect: profiles and reports kept in $KEEP"
exit 0
