#!/usr/bin/env bash
# icount_client.sh - instructions per message in the Swift bench client (relayctl, callgrind).
#
#   scripts/icount_client.sh [options] RELAYCTL [RELAYD]
#
# The mirror of scripts/icount.sh: here relayctl runs under
# `valgrind --tool=callgrind` and relayd natively. The broker is
#   relayctl bench serve --durability MODE --relayd RELAYD --work-dir DIR
# (run natively, once for all rounds): the bench's own relayd, configured as
# for every `relayctl bench` scenario (PKI, allow-all ACL, max_in_flight
# 4096), which prints {ca,cert,key,port,pid} and stays up until SIGTERM.
# (`relayctl bench --relayd` cannot start relayd itself under valgrind:
# Foundation's Process fails with "Bad file descriptor".)
# For each of RUNS rounds, a stripped copy of relayctl, with the sigsuspend
# shim preloaded, runs under callgrind
#   relayctl bench pubsub --server 127.0.0.1:PORT --ca CA --cert CERT --key KEY
#            --size SIZE --window 1000 --count N            (then --count 2N)
# 1 publisher -> 1 subscriber in the one relayctl process, which publishes,
# reads the PUBACKs, decodes every MSG and checks it (lost/duplicated/
# out-of-order fail the run). Start-up, handshakes and shutdown cost the same
# in both runs, so
#   client Ir per message = (Ir(2N) - Ir(N)) / N
# counts every relayctl thread's user-space instructions for one more message
# published, acknowledged and delivered (not the kernel's, not relayd's);
# malloc, swift_retain and swift_release calls per message the same way.
# Prints one line per round, the median and spread, and the tables of the
# median round (scripts/icount_report.py). Where the calls come from:
#   callgrind_annotate --tree=caller KEEP/callgrind.out.R.n2N
# (the profiles are of the stripped copy: function names, no lines).
#
# With --replay it runs `relayctl bench replay --window 4096` instead (the
# harness's replay: N messages published, then read back from the earliest
# by one subscriber); the difference then counts one more message
# published and acknowledged in the fill plus one more replayed and checked.
# The receive side's own share is in the tree under
# `ClientChannelHandler.channelRead` / `ConnectionCore.delivered`.
#
# Options (or environment):
#   --durability M (ICOUNT_DURABILITY, default async) the broker's mode: async (the
#                  bench-peers row against NATS core / JetStream) or fsync (wave 9's figures)
#   --replay       (ICOUNT_REPLAY=1)             the replay scenario (window 4096)
#   --size S       (ICOUNT_SIZE, default 128)     payload bytes
#   --count N      (ICOUNT_N, default 20000)      messages of the small run; the big one has 2N.
#                  Keep N >= 2 x the window: the bench's payload ring holds min(N, 2 x window)
#                  buffers, allocated up front, so a smaller N counts part of them per message
#                  (--replay --count 5000: 2 malloc/msg, against 0.11 at the default 20000)
#   --runs R       (ICOUNT_RUNS, default 3)       rounds
#   --top K        (ICOUNT_TOP, default 25)       rows of the function tables
#   --keep DIR     keep the profiles and reports in DIR
#
# Needs valgrind, a C compiler (cc), python3, strip; swift-demangle (from the
# Swift toolchain) for readable names.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${ICOUNT_N:-20000}"
RUNS="${ICOUNT_RUNS:-3}"
TOP="${ICOUNT_TOP:-25}"
SIZE="${ICOUNT_SIZE:-128}"
DURABILITY="${ICOUNT_DURABILITY:-async}"
KEEP=""
SCENARIO=pubsub
WINDOW=1000
[ "${ICOUNT_REPLAY:-0}" = 1 ] && { SCENARIO=replay; WINDOW=4096; }

NAME=icount_client
# shellcheck source=icount_common.sh
. "$HERE/icount_common.sh"

ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) N="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --durability) DURABILITY="$2"; shift 2 ;;
    --top) TOP="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    --replay) SCENARIO=replay; WINDOW=4096; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ "${#ARGS[@]}" -ge 1 ] && [ "${#ARGS[@]}" -le 2 ] || usage 64
RELAYCTL="$(icount_absolute "${ARGS[0]}")"
RELAYD="${ARGS[1]:-$(dirname "$RELAYCTL")/relayd}"
[ -x "$RELAYCTL" ] || die "relayctl is not an executable at $RELAYCTL"
[ -x "$RELAYD" ] || die "relayd is not an executable at $RELAYD; pass it as the second argument"
case "$DURABILITY" in fsync|async) ;; *) die "--durability must be fsync or async, not $DURABILITY" ;; esac
icount_preflight "$N" "$RUNS"
icount_find_demangler
icount_workdir
trap 'rm -rf "$WORK"' EXIT
icount_stripped "$RELAYCTL" relayctl

# The bench's own broker, natively, for every round; its JSON line names the port and PKI.
"$RELAYCTL" bench serve --durability "$DURABILITY" --relayd "$RELAYD" --work-dir "$WORK" \
  >"$WORK/serve.json" 2>"$WORK/serve.log" &
SERVE=$!
trap 'kill "$SERVE" 2>/dev/null; wait "$SERVE" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
  [ -s "$WORK/serve.json" ] && break
  kill -0 "$SERVE" 2>/dev/null || die "relayctl bench serve exited: $(cat "$WORK/serve.log")"
  sleep 0.1
done
[ -s "$WORK/serve.json" ] || die "relayctl bench serve printed nothing in 30 s: $(cat "$WORK/serve.log")"
read -r PORT CA CERT KEY < <(python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
print(j["port"], j["ca"], j["cert"], j["key"])' "$WORK/serve.json")

bench() { # count profile
  if ! LD_PRELOAD="$WORK/icount_sigsuspend.so" valgrind --tool=callgrind --trace-children=no \
      --callgrind-out-file="$2" --log-file="$2.valgrind.log" \
      "$WORK/relayctl" bench "$SCENARIO" --server "127.0.0.1:$PORT" --cert "$CERT" \
      --key "$KEY" --ca "$CA" --size "$SIZE" --window "$WINDOW" \
      --count "$1" --timeout 900 >"$2.bench.log" 2>&1; then
    cat "$2.bench.log" >&2
    die "the bench failed (--count $1); its output is above"
  fi
  icount_check_profile "$2"
}

echo "icount_client: relayctl $RELAYCTL, relayd $RELAYD, $(valgrind --version)"
echo "icount_client: relayctl bench $SCENARIO, 1 -> 1, $SIZE B, $DURABILITY (relayctl bench serve), window $WINDOW, N=$N and 2N=$((2 * N)); $RUNS rounds"
for round in $(seq 1 "$RUNS"); do
  small="$OUT/callgrind.out.$round.n$N"
  big="$OUT/callgrind.out.$round.n$((2 * N))"
  bench "$N" "$small"
  bench "$((2 * N))" "$big"
  python3 "$HERE/icount_report.py" ${DEMANGLER:+--demangler "$DEMANGLER"} --top "$TOP" --process relayctl \
    --json "$OUT/report.$round.json" "client $SIZE B round $round" "$N" "$small" "$big" >"$OUT/report.$round.txt"
  head -1 "$OUT/report.$round.txt"
done

icount_summary "" "$RUNS" "icount_client: relayctl" msg
[ -n "$KEEP" ] && echo "icount_client: profiles and reports kept in $KEEP"
exit 0
