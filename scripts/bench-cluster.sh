#!/usr/bin/env bash
# bench-cluster.sh - one relayd edge next to direct nats.c publishing, into
# the same R3 JetStream stream, in the same run (`make bench-cluster`).
#
# 1. builds relayd and relayctl (release, as bench-peers.sh) unless
#    RELAY_BIN_DIR is set, and scripts/nats_r3_bench.c (cc + pkg-config libnats);
# 2. makes a throwaway PKI (relayctl pki init + NATS node/client certificates),
#    starts 3 nats-server nodes (mTLS on clients and routes) and one relayd
#    edge on the jetstream backend, all on 127.0.0.1;
# 3. ROUNDS times, alternating: direct nats.c async publish of N messages of
#    SIZE bytes (WINDOW in flight) to the edge's stream, the same with a
#    unique Nats-Msg-Id on each message (as relayd's dedup key), then
#    `relayctl bench pubsub --subscribers 0` through the edge (same N, SIZE,
#    WINDOW; each PUBACK waits for JetStream's ack);
# 4. prints acked msg/s and p99 publish->ack of both and the ratio per round
#    (target: the edge reaches at least 80% of direct, docs/cluster.md),
#    and stops everything it started, by PID.
#
# Knobs (environment):
#   N=20000 SIZE=128 WINDOW=1000 ROUNDS=1 REPLICAS=3 SCEN_TIMEOUT=60
#   REPLAY=0          > 0: after the rounds, `relayctl bench replay --count REPLAY` through
#                     the edge (fill, then one subscriber reads them back from the earliest):
#                     replayed msg/s (row "replay")
#   RATE=0            > 0: also an edge run paced at RATE msg/s offered (4 s), for
#                     p99 publish->ack below saturation (row "edge@RATE")
#   NATS_BASE=24222   client ports NATS_BASE..+2, routes +1000, monitoring +2000
#   EDGE_PORT=27443
#   RELAY_BIN_DIR     use relayd/relayctl from there, build nothing
#   SCRATCH           SwiftPM scratch path (default .build-bench-release, shared with bench-peers.sh)
#   BENCH_WORKDIR     default ${TMPDIR:-/tmp}/relay-bench-cluster (removed at the end unless KEEP=1)
#   CPU=1             also print the CPU each side cost per acked message (µs, user+system
#                     from /proc): the three nats-server nodes together, and relayd
#   LIKE_EDGE=1       also a side "direct~edge": direct+id with messages the size of the
#                     edge's record (SIZE + EDGE_OVERHEAD bytes, default 78: the record
#                     format 2 header relayd writes by default, 50 bytes, plus the bench
#                     client's principal "CN=billing-service,OU=billing", 28), ids as long
#                     as relayd's (EDGE_ID_LENGTH, default 69: format 2's compact id of a
#                     publish id >= 65536) and a subject as long as the edge's
#                     (EDGE_SUBJECT_LENGTH, default 35: relay.bench.pubsub.<16 hex>), to
#                     tell what the bytes cost nats-server from what the edge does (for
#                     record_format = "v1" edges: EDGE_OVERHEAD=108 EDGE_ID_LENGTH=104)
#   DEDUP_WINDOW      the stream's duplicate window ([storage] dedup_window, default relayd's
#                     120s), e.g. 30s, to see what the window costs nats-server per id
#   RESULTS           also append every round's two JSON lines here, each with
#                     "side":"direct"|"direct_id"|"edge" and "round" (bench-peers.sh BENCH_CLUSTER=1 reads them)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${N:-20000}" SIZE="${SIZE:-128}" WINDOW="${WINDOW:-1000}" ROUNDS="${ROUNDS:-1}" REPLICAS="${REPLICAS:-3}" RATE="${RATE:-0}"
SCEN_TIMEOUT="${SCEN_TIMEOUT:-60}"
NATS_BASE="${NATS_BASE:-24222}" EDGE_PORT="${EDGE_PORT:-27443}"
SCRATCH="${SCRATCH:-$ROOT/.build-bench-release}"
WORK="${BENCH_WORKDIR:-${TMPDIR:-/tmp}/relay-bench-cluster}/$(date +%Y%m%d-%H%M%S)-$$"
NATS_SERVER="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
STREAM=RELAY

log() { printf '[bench-cluster] %s\n' "$*" >&2; }
die() { printf '[bench-cluster] error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/cluster-lib.sh
source "$ROOT/scripts/cluster-lib.sh"

[[ $N =~ ^[0-9]+$ && $SIZE =~ ^[0-9]+$ && $WINDOW =~ ^[0-9]+$ && $ROUNDS =~ ^[0-9]+$ && $RATE =~ ^[0-9]+$ ]] \
  || die "N, SIZE, WINDOW, ROUNDS, RATE must be integers"
[[ -x $NATS_SERVER ]] || die "nats-server not found (apt-get install nats-server, or make deps)"
pkg-config --exists libnats || die "libnats-dev is missing (make deps)"

if [[ -n ${RELAY_BIN_DIR:-} ]]; then
  BIN="$RELAY_BIN_DIR"
else
  log "building relayd and relayctl (release, $SCRATCH)"
  for product in relayd relayctl; do
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --scratch-path "$SCRATCH" --product "$product" >&2
  done
  BIN="$SCRATCH/release"
fi
mkdir -p "$WORK"/{pki,edge,n1,n2,n3}
cc -O2 -o "$WORK/nats_r3_bench" "$ROOT/scripts/nats_r3_bench.c" $(pkg-config --cflags --libs libnats)

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ ${KEEP:-0} == 1 ]] && log "kept $WORK" || rm -rf "$WORK"
}
trap stop_all INT TERM EXIT

"$BIN/relayctl" pki init --dir "$WORK/pki" >/dev/null
issue_nats_cert "$WORK/pki" nats-node serverAuth,clientAuth
issue_nats_cert "$WORK/pki" nats-client clientAuth
P="$WORK/pki"

start_nats_nodes "$WORK" "$P" "$NATS_BASE" "$NATS_SERVER"
wait_nats_healthy 30 $((NATS_BASE + 2000)) $((NATS_BASE + 2001)) $((NATS_BASE + 2002)) \
  || die "the NATS cluster did not form in 30 s (KEEP=1 keeps $WORK/n*.log)"

SERVERS="\"${URLS//,/\", \"}\""
DEDUP_LINE=""
[[ -n ${DEDUP_WINDOW:-} ]] && DEDUP_LINE="dedup_window = \"$DEDUP_WINDOW\""
cat > "$WORK/edge.toml" <<EOF
[server]
listen = "127.0.0.1:$EDGE_PORT"
[tls]
certificate = "$P/server.pem"
private_key = "$P/server.key"
client_ca = ["$P/ca.pem"]
[storage]
backend = "jetstream"
path = "$WORK/edge"
$DEDUP_LINE
[storage.jetstream]
servers = [$SERVERS]
ca = "$P/ca.pem"
certificate = "$P/nats-client.pem"
private_key = "$P/nats-client.key"
stream = "$STREAM"
replicas = $REPLICAS
[limits]
max_in_flight = 4096
[metrics]
listen = ""
[log]
level = "warning"
[[acl.rule]]
name = "bench"
publish = [">"]
subscribe = [">"]
EOF
"$BIN/relayd" --config "$WORK/edge.toml" > "$WORK/edge.log" 2>&1 &
EDGE_PID=$!
PIDS+=($EDGE_PID)
wait_relayd_listening 30 "$WORK/edge.log" "$EDGE_PID" || die "relayd did not start: $(tail -n 5 "$WORK/edge.log")"

NATS_PIDS=("${PIDS[@]:0:3}")
cpu_ticks() { # user+system clock ticks of the given PIDs, summed (fields 14 and 15 of /proc/PID/stat)
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
measured() { # side-name command...: runs the command, prints its output, and with CPU=1 notes its CPU per message
  local before_n before_e out
  before_n=$(cpu_ticks "${NATS_PIDS[@]}") before_e=$(cpu_ticks "$EDGE_PID")
  out=$("${@:2}")
  printf '%s\n' "$out"
  if [[ ${CPU:-0} == 1 ]]; then
    printf '%s %s %s\n' "$1" $(( ($(cpu_ticks "${NATS_PIDS[@]}") - before_n) * TICK_US )) \
      $(( ($(cpu_ticks "$EDGE_PID") - before_e) * TICK_US )) >> "$WORK/cpu.txt"
  fi
}
cpu_row() { # round side acked-count
  [[ ${CPU:-0} == 1 && $3 -gt 0 ]] || return 0
  awk -v r="$1" -v s="$2" -v n="$3" '$1 == s { printf "%-6s %-9s cpu per acked msg: nats-server (3 nodes) %.1f us, relayd %.1f us\n", r, s, $2 / n, $3 / n }' "$WORK/cpu.txt"
}
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
printf '%-6s %-9s %12s %12s %12s %8s\n' round side "acked msg/s" "p50 ack ms" "p99 ack ms" "ok"
row() { # round side json rate-field
  printf '%-6s %-9s %12.0f %12.2f %12.2f %8s\n' "$1" "$2" "$(field "$3" "$4")" \
    "$(awk -v v="$(field "$3" publish_ack_p50_us)" 'BEGIN{print v/1000}')" \
    "$(awk -v v="$(field "$3" publish_ack_p99_us)" 'BEGIN{print v/1000}')" \
    "$(sed -n 's/.*"ok":\(true\|false\).*/\1/p' <<<"$3")"
}
direct_run() { # extra args: one nats.c run into the edge's stream (subject under its prefix)
  "$WORK/nats_r3_bench" --url "$URLS" --ca "$P/ca.pem" --cert "$P/nats-client.pem" --key "$P/nats-client.key" \
    --stream "$STREAM" --subject "relay.bench.direct" --n "$N" --size "$SIZE" --window "$WINDOW" \
    --replicas "$REPLICAS" --timeout "$SCEN_TIMEOUT" "$@" || true
}
edge_run() { # extra args: relayctl bench through the edge, its JSON line
  "$BIN/relayctl" bench pubsub --server "127.0.0.1:$EDGE_PORT" --ca "$P/ca.pem" --cert "$P/billing.pem" \
    --key "$P/billing.key" --broker-pid "$EDGE_PID" --subscribers 0 --size "$SIZE" --window "$WINDOW" \
    --timeout "$SCEN_TIMEOUT" --json "$@" | grep '^{' | tail -n 1 || true
}
for round in $(seq 1 "$ROUNDS"); do
  # direct: plain async publishes; direct_id: each with a unique Nats-Msg-Id,
  # as relayd sends its dedup key (JetStream then tracks every id);
  # edge: relayctl bench through relayd.
  : > "$WORK/cpu.txt"
  direct=$(measured direct direct_run)
  direct_id=$(measured direct+id direct_run --msg-id 1)
  edge=$(measured edge edge_run --count "$N")
  if [[ ${LIKE_EDGE:-0} == 1 ]]; then
    like_subject="relay.bench.likeedge."
    while ((${#like_subject} < ${EDGE_SUBJECT_LENGTH:-35})); do like_subject+="x"; done
    like=$(SIZE=$((SIZE + ${EDGE_OVERHEAD:-78})) measured direct~edge direct_run --msg-id 1 \
      --id-length "${EDGE_ID_LENGTH:-69}" --subject "$like_subject")
  fi
  [[ -n $direct && -n $direct_id ]] || die "the direct publisher printed nothing"
  [[ -n $edge ]] || die "relayctl bench printed nothing (edge log: $(tail -n 5 "$WORK/edge.log"))"
  row "$round" direct "$direct" acked_msgs_per_sec
  row "$round" direct+id "$direct_id" acked_msgs_per_sec
  row "$round" edge "$edge" published_msgs_per_sec
  cpu_row "$round" direct "$(field "$direct" acked)"
  cpu_row "$round" direct+id "$(field "$direct_id" acked)"
  cpu_row "$round" edge "$N"
  if [[ ${LIKE_EDGE:-0} == 1 && -n $like ]]; then
    row "$round" direct~edge "$like" acked_msgs_per_sec
    cpu_row "$round" direct~edge "$(field "$like" acked)"
  fi
  if ((RATE > 0)); then
    paced=$(edge_run --count $((RATE * 4)) --rate "$RATE")
    [[ -n $paced ]] && row "$round" "edge@$RATE" "$paced" published_msgs_per_sec
  fi
  awk -v e="$(field "$edge" published_msgs_per_sec)" -v d="$(field "$direct" acked_msgs_per_sec)" \
    -v i="$(field "$direct_id" acked_msgs_per_sec)" 'BEGIN { r = (d > 0) ? e / d : 0; q = (i > 0) ? e / i : 0;
    printf "%-6s edge/direct = %.2f (target >= 0.80: %s); edge/direct+id = %.2f\n", "", r, (r >= 0.8 ? "met" : "NOT met"), q }'
  printf '%s\n' "direct $direct" "direct_id $direct_id" "edge $edge" >> "$WORK/results.txt"
  if [[ -n ${RESULTS:-} ]]; then
    printf '%s\n' "${direct%\}},\"side\":\"direct\",\"round\":$round}" \
      "${direct_id%\}},\"side\":\"direct_id\",\"round\":$round}" \
      "${edge%\}},\"side\":\"edge\",\"round\":$round}" >> "$RESULTS"
  fi
done
if ((${REPLAY:-0} > 0)); then
  replay=$("$BIN/relayctl" bench replay --server "127.0.0.1:$EDGE_PORT" --ca "$P/ca.pem" --cert "$P/billing.pem" \
    --key "$P/billing.key" --broker-pid "$EDGE_PID" --count "$REPLAY" --size "$SIZE" --timeout "$SCEN_TIMEOUT" --json \
    | grep '^{' | tail -n 1 || true)
  [[ -n $replay ]] || die "relayctl bench replay printed nothing (edge log: $(tail -n 5 "$WORK/edge.log"))"
  printf '%-6s %-9s %12.0f replayed msg/s (%s messages, ok %s)\n' "" replay "$(field "$replay" delivered_msgs_per_sec)" \
    "$REPLAY" "$(sed -n 's/.*"ok":\(true\|false\).*/\1/p' <<<"$replay")"
  printf '%s\n' "replay $replay" >> "$WORK/results.txt"
fi
