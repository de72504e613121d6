#!/usr/bin/env bash
# icount_idle.sh - instructions per message in relayd for a connection with idle subscriptions (callgrind).
#
#   scripts/icount_idle.sh [options] RELAYD [RELAYCTL]
#
# The workload is `relay_churn idle K N 1` (scripts/relay_churn.c): one
# connection opens K subscriptions s.0 ... s.<K-1>, then publishes N
# messages to s.0 one at a time (window 1: each routed batch is one
# message), reading every PUBACK and MSG; the other K-1 subscriptions are
# idle. relayd runs under `valgrind --tool=callgrind` (started by `relayctl
# bench serve` through the wrapper scripts/icount.sh uses), the client
# natively. Two runs, N and 2N messages, so
#   Ir per message = (Ir(2N) - Ir(N)) / N
# (start-up, the handshake, the SUBs and shutdown cancel out). With K = 1
# and K = 1,000 the difference per idle subscription is what a delivery
# costs per idle subscription of its connection (docs/performance.md,
# "Wave 19"). Prints one line per round and K, then the median and range.
#
# Options (or environment):
#   --subs "..."   (ICOUNT_SUBS, default "1 1000")  values of K
#   --count N      (ICOUNT_N, default 1000)         messages of the small run; the big one has 2N
#   --runs R       (ICOUNT_RUNS, default 3)         rounds
#   --durability M (ICOUNT_DURABILITY, default async)
#   --keep DIR     keep the profiles and reports in DIR
#
# Needs valgrind, cc (and OpenSSL's headers for relay_churn), python3, strip.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${ICOUNT_N:-1000}"
RUNS="${ICOUNT_RUNS:-3}"
SUBS="${ICOUNT_SUBS:-1 1000}"
DURABILITY="${ICOUNT_DURABILITY:-async}"
KEEP=""

NAME=icount_idle
# shellcheck source=icount_common.sh
. "$HERE/icount_common.sh"

ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) N="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --subs) SUBS="$2"; shift 2 ;;
    --durability) DURABILITY="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
icount_relayd_relayctl "${ARGS[@]}"
icount_preflight "$N" "$RUNS"
for k in $SUBS; do [[ "$k" =~ ^[1-9][0-9]*$ ]] || die "--subs takes positive integers, not $k"; done
icount_find_demangler

icount_workdir
SERVE=""
cleanup() {
  if [ -n "$SERVE" ]; then kill "$SERVE" 2>/dev/null || true; wait "$SERVE" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
icount_stripped "$RELAYD" relayd
icount_relayd_wrapper
cc -O2 -o "$WORK/relay_churn" "$HERE/relay_churn.c" -lssl -lcrypto -lpthread || die "could not build relay_churn"

run() { # subs count profile
  local serve_dir="$WORK/serve.$$.$RANDOM"
  mkdir -p "$serve_dir"
  ICOUNT_PROFILE="$3" "$RELAYCTL" bench serve --relayd "$WORK/relayd-under-callgrind" --durability "$DURABILITY" \
    --work-dir "$serve_dir" >"$serve_dir/serve.json" 2>"$3.serve.log" &
  SERVE=$!
  for _ in $(seq 1 1200); do [ -s "$serve_dir/serve.json" ] && break; sleep 0.1; done
  [ -s "$serve_dir/serve.json" ] || die "relayctl bench serve did not start: $(cat "$3.serve.log")"
  eval "$(python3 -c 'import json, shlex, sys; d = json.load(open(sys.argv[1]))
for k in ("port", "ca", "cert", "key"): print(f"SERVE_{k.upper()}={shlex.quote(str(d[k]))}")' "$serve_dir/serve.json")"
  if ! "$WORK/relay_churn" --port "$SERVE_PORT" --ca "$SERVE_CA" --cert "$SERVE_CERT" --key "$SERVE_KEY" \
      idle "$1" "$2" 1 >"$3.churn.log" 2>&1; then
    cat "$3.churn.log" >&2
    die "relay_churn idle $1 $2 failed; its output is above"
  fi
  kill "$SERVE"
  wait "$SERVE" 2>/dev/null || true
  SERVE=""
  icount_check_profile "$3"
}

echo "icount_idle: relayd $RELAYD, relayctl $RELAYCTL, $(valgrind --version)"
echo "icount_idle: relay_churn idle K N 1 (one connection, K subscriptions, window 1, $DURABILITY), N=$N and 2N=$((2 * N)); $RUNS rounds of K in: $SUBS"
for round in $(seq 1 "$RUNS"); do
  for k in $SUBS; do
    small="$OUT/callgrind.out.k$k.$round.n$N"
    big="$OUT/callgrind.out.k$k.$round.n$((2 * N))"
    run "$k" "$N" "$small"
    run "$k" "$((2 * N))" "$big"
    python3 "$HERE/icount_report.py" ${DEMANGLER:+--demangler "$DEMANGLER"} --top 15 \
      --json "$OUT/report.k$k.$round.json" "K=$k round $round" "$N" "$small" "$big" >"$OUT/report.k$k.$round.txt"
    head -1 "$OUT/report.k$k.$round.txt"
  done
done

echo
for k in $SUBS; do icount_summary "k$k" "$RUNS" "icount_idle K=$k: relayd" msg | sed -n 1p; done
[ -n "$KEEP" ] && echo "icount_idle: profiles and reports kept in $KEEP"
exit 0
