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
# docs/performance-history.md, "mTLS handshakes (wave 15)".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${ICOUNT_N:-200}"
RUNS="${ICOUNT_RUNS:-3}"
SIDES="${ICOUNT_SIDES:-relayd client}"
TOP="${ICOUNT_TOP:-25}"
MATCH="${ICOUNT_MATCH:-Relay(Broker|Core|TLS|Policy|Wire|Client|Bench)|relayd|relayctl}"
KEEP=""

NAME=icount_connect
# shellcheck source=icount_common.sh
. "$HERE/icount_common.sh"

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
icount_relayd_relayctl "${ARGS[@]}"
icount_preflight "$N" "$RUNS"
for side in $SIDES; do [[ "$side" == relayd || "$side" == client ]] || die "--sides takes relayd and/or client, not $side"; done
icount_find_demangler

icount_workdir
SERVE=""
cleanup() {
  if [ -n "$SERVE" ]; then kill "$SERVE" 2>/dev/null || true; wait "$SERVE" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
icount_stripped "$RELAYD" relayd
icount_stripped "$RELAYCTL" relayctl
icount_relayd_wrapper

run_relayd() { # count profile
  if ! ICOUNT_PROFILE="$2" "$RELAYCTL" bench connect --relayd "$WORK/relayd-under-callgrind" --durability fsync \
      --count "$1" --concurrency 8 --timeout 900 --work-dir "$WORK" >"$2.bench.log" 2>&1; then
    cat "$2.bench.log" >&2
    die "the bench failed (relayd side, --count $1); its output is above"
  fi
  icount_check_profile "$2"
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
  icount_check_profile "$2"
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
for side in $SIDES; do icount_summary "$side" "$RUNS" "icount_connect $side:" handshake; done
[ -n "$KEEP" ] && echo "icount_connect: profiles and reports kept in $KEEP"
exit 0
