#!/usr/bin/env bash
# icount.sh - instructions per published-and-delivered message in relayd (callgrind).
#
#   scripts/icount.sh [options] RELAYD [RELAYCTL]
#
# For each durability mode (fsync, async) and each of RUNS rounds, runs
#   relayctl bench pubsub --size 128 --window 1000 --count N    (then --count 2N)
# 1 publisher -> 1 subscriber, with only relayd under `valgrind --tool=callgrind`
# (the bench client runs natively, outside valgrind, and still checks every
# message: lost/duplicated/out-of-order fail the run). Start-up, handshakes and
# shutdown cost the same in both runs, so
#   Ir per message = (Ir(2N) - Ir(N)) / N
# is the cost of one more message in steady state: user-space instructions of
# every relayd thread (not the kernel's, not the client's). The same difference
# per function and per library says where they go (scripts/icount_report.py).
# Prints one line per round and mode, the median and spread per mode, and the
# tables of the median round. Exit 1 when a bench run fails or a profile is
# missing.
#
# With --replay it counts instead the instructions per *replayed* message:
#   relayctl bench replay --size 128 --window 4096 --count N   (then --count 2N)
# collecting only inside the delivery turn (`--toggle-collect` on the closure
# SessionHandler.schedulePump enqueues: SessionStateMachine.pump, i.e. the
# store read and the MSG writing, then the flush through TLS to the socket).
# SUB and CREDIT only schedule that turn, so every replayed MSG is written in
# it, and the fill before the replay is not counted.
#
# Options (or environment):
#   --replay       (ICOUNT_REPLAY=1)           replayed messages in the delivery turn, as above
#   --count N      (ICOUNT_N, default 20000)   messages of the small run; the big one has 2N
#   --runs R       (ICOUNT_RUNS, default 3)    rounds per mode
#   --modes "..."  (ICOUNT_MODES, default "fsync async")
#   --top K        (ICOUNT_TOP, default 20)    rows of the function tables
#   --rate R       (ICOUNT_RATE, default 0)    offered msg/s (bench --rate, open loop); 0 = closed
#                  loop at full load, the repeatable figure to compare. A low rate (e.g. 500)
#                  shows what a message that travels alone costs, but that figure depends on
#                  timing (wake-ups, batch forming) and varied by 30 % between rounds: indicative only
#   --keep DIR     keep the profiles (callgrind.out.*, for callgrind_annotate) and reports in DIR
#
# Needs valgrind, a C compiler (cc), python3, strip; swift-demangle (from the
# Swift toolchain) for readable names. Why the shim and the stripped copy:
# docs/performance-history.md, "Instruction counts (wave 6)".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${ICOUNT_N:-20000}"
RUNS="${ICOUNT_RUNS:-3}"
MODES="${ICOUNT_MODES:-fsync async}"
TOP="${ICOUNT_TOP:-20}"
RATE="${ICOUNT_RATE:-0}"
REPLAY="${ICOUNT_REPLAY:-0}"
KEEP=""
WINDOW=1000
SIZE=128
# The closure SessionHandler.schedulePump hands the event loop: the whole
# delivery turn. Its name since wave 18 (`schedulePump(afterIO:)`), then the
# one before, so builds of either can be counted.
TURNS=('$s11RelayBroker14SessionHandlerC12schedulePump7afterIOySb_tFyycfU_'
       '$s11RelayBroker14SessionHandlerC12schedulePumpyyFyyYbcfU_')

NAME=icount
# shellcheck source=icount_common.sh
. "$HERE/icount_common.sh"

ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) N="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --modes) MODES="$2"; shift 2 ;;
    --top) TOP="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --replay) REPLAY=1; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
icount_relayd_relayctl "${ARGS[@]}"
icount_preflight "$N" "$RUNS"
SCENARIO=pubsub COLLECT=""
if [ "$REPLAY" = 1 ]; then
  SCENARIO=replay WINDOW=4096
  [ "$MODES" = "fsync async" ] && MODES=fsync
  TURN=""
  for candidate in "${TURNS[@]}"; do
    if nm "$RELAYD" | grep -F -c " $candidate" >/dev/null; then TURN=$candidate; break; fi
  done
  [ -n "$TURN" ] || die "relayd has none of the symbols ${TURNS[*]} (renamed? update TURNS in this script)"
  COLLECT="--toggle-collect='$TURN'"
fi
icount_find_demangler
icount_workdir
trap 'rm -rf "$WORK"' EXIT
icount_stripped "$RELAYD" relayd
icount_relayd_wrapper "$COLLECT"

bench() { # mode count profile
  local log="$3.bench.log"
  if ! ICOUNT_PROFILE="$3" "$RELAYCTL" bench "$SCENARIO" --relayd "$WORK/relayd-under-callgrind" \
      --durability "$1" --size "$SIZE" --window "$WINDOW" --count "$2" --rate "$RATE" --timeout 900 \
      --work-dir "$WORK" >"$log" 2>&1; then
    cat "$log" >&2
    die "the bench failed ($1, --count $2); its output is above"
  fi
  icount_check_profile "$3"
}

echo "icount: relayd $RELAYD ($("$RELAYD" --version 2>/dev/null || echo '?')), $(valgrind --version)"
echo "icount: workload relayctl bench $SCENARIO${COLLECT:+ (delivery turn only)}, 1 -> 1, $SIZE B, window $WINDOW, rate $RATE (0: closed loop), N=$N and 2N=$((2 * N)); $RUNS rounds of: $MODES"
for round in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    small="$OUT/callgrind.out.$mode.$round.n$N"
    big="$OUT/callgrind.out.$mode.$round.n$((2 * N))"
    bench "$mode" "$N" "$small"
    bench "$mode" "$((2 * N))" "$big"
    python3 "$HERE/icount_report.py" ${DEMANGLER:+--demangler "$DEMANGLER"} --top "$TOP" \
      --json "$OUT/report.$mode.$round.json" "$mode round $round" "$N" "$small" "$big" >"$OUT/report.$mode.$round.txt"
    head -1 "$OUT/report.$mode.$round.txt"
  done
done

echo
for mode in $MODES; do icount_summary "$mode" "$RUNS" "icount $mode: relayd" msg; done
[ -n "$KEEP" ] && echo "icount: profiles and reports kept in $KEEP"
exit 0
