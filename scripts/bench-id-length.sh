#!/usr/bin/env bash
# bench-id-length.sh - does the length of the Nats-Msg-Id cost nats-server?
# (docs/performance-history.md, "Cluster edge: id length (wave 9)").
#
# Starts 3 nats-server nodes (mTLS on clients and routes, as bench-cluster.sh)
# and runs PAIRS alternated pairs of direct nats.c publishes with a unique id
# per message (scripts/nats_r3_bench.c --msg-id 1), one with ids LONG characters
# long, one with SHORT (the order alternates pair by pair), N messages of 128 B,
# 1000 in flight, into one R3 stream. Each run holds LOCK (flock) if set, so no
# build runs meanwhile. One line per run: acked msg/s, CPU of the three
# nats-server nodes per acked message (user+system from /proc), p99 publish->ack.
#
# Knobs: N=40000 PAIRS=6 LONG=69 (format 2's id) SHORT=22 (a 128-bit hash in
# base64url) NATS_BASE=25322 LOCK=/tmp/relay-build.lock RELAYCTL (for the PKI;
# default relayctl on PATH) NATS_SERVER.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cluster-lib.sh
source "$ROOT/scripts/cluster-lib.sh"
N="${N:-40000}" PAIRS="${PAIRS:-6}" LONG="${LONG:-69}" SHORT="${SHORT:-22}" NATS_BASE="${NATS_BASE:-25322}"
LOCK="${LOCK-/tmp/relay-build.lock}" RELAYCTL="${RELAYCTL:-$(command -v relayctl || true)}"
NATS_SERVER="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
[[ -x $RELAYCTL && -x $NATS_SERVER ]] || { echo "bench-id-length: set RELAYCTL and NATS_SERVER" >&2; exit 1; }
WORK="$(mktemp -d)"; mkdir -p "$WORK/pki"
PIDS=()
stop_all() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait; rm -rf "$WORK"; }
trap stop_all EXIT
cc -O2 -o "$WORK/nats_r3_bench" "$ROOT/scripts/nats_r3_bench.c" $(pkg-config --cflags --libs libnats)
"$RELAYCTL" pki init --dir "$WORK/pki" >/dev/null
P="$WORK/pki"
issue_nats_cert "$P" nats-node serverAuth,clientAuth
issue_nats_cert "$P" nats-client clientAuth
start_nats_nodes "$WORK" "$P" "$NATS_BASE" "$NATS_SERVER"
wait_nats_healthy 30 $((NATS_BASE + 2000)) $((NATS_BASE + 2001)) $((NATS_BASE + 2002)) \
  || { echo "bench-id-length: the NATS cluster did not form" >&2; exit 1; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
ticks() { local total=0 pid; for pid in "${PIDS[@]}"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done; echo "$total"; }
publish() { # id-length messages
  "$WORK/nats_r3_bench" --url "$URLS" --ca "$P/ca.pem" --cert "$P/nats-client.pem" --key "$P/nats-client.key" \
    --stream RELAY_BENCH --subject relay.bench.direct --n "$2" --size 128 --window 1000 --msg-id 1 --id-length "$1"
}
locked() { if [[ -n $LOCK ]]; then flock "$LOCK" "$@"; else "$@"; fi; }
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
run() { # pair id-length
  local before out
  before=$(ticks)
  out=$(publish "$2" "$N")
  awk -v p="$1" -v l="$2" -v r="$(field "$out" acked_msgs_per_sec)" -v n="$(field "$out" acked)" \
    -v c=$(( ($(ticks) - before) * TICK_US )) -v q="$(field "$out" publish_ack_p99_us)" \
    'BEGIN { printf "pair %d L=%d msg/s %.0f cpu_us/msg %.1f p99_ms %.2f acked %d\n", p, l, r, (n > 0 ? c / n : 0), q / 1000, n }'
}
locked bash -c "$(declare -p WORK URLS P); $(declare -f publish); publish $SHORT 5000 >/dev/null"  # creates the stream, warms up
for pair in $(seq 1 "$PAIRS"); do
  if ((pair % 2)); then order="$LONG $SHORT"; else order="$SHORT $LONG"; fi
  for length in $order; do
    locked bash -c "$(declare -p WORK URLS P N TICK_US PIDS); $(declare -f run publish ticks field); run $pair $length"
  done
done
