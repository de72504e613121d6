#!/usr/bin/env bash
# cluster.sh - a local Relay cluster in one command (`make cluster`).
#
# Starts, on 127.0.0.1 with the dev PKI (dev/pki, `make pki`):
#   - 3 nats-server nodes with JetStream, mTLS on clients and routes
#     (config/cluster/nats-n{1,2,3}.conf: clients 4222-4224, routes 6222-6224,
#     monitoring http://127.0.0.1:8222-8224);
#   - 2 relayd edges on the jetstream backend (config/cluster/edge-{a,b}.toml:
#     edge A 127.0.0.1:7443, edge B 127.0.0.1:7444);
# prints the commands to try, and stops everything it started (by PID) on
# Ctrl-C. One process exiting (kill -9 a node to watch the failover) stops
# nothing else. State lives in dev/cluster/ (kept across runs;
# CLUSTER_RESET=1 wipes it first).
#
# --check: start it all, then check what the printed commands do (a message
# published through edge A reaches a subscriber on edge B; relayctl status
# answers on both edges; the stream has a leader), stop everything and check
# that all 5 processes are gone; exit 0 only if all of that held
# (ClusterTests/makeClusterCheck runs it).
#
# Knobs (environment):
#   RELAY_BIN_DIR   relayd/relay-pub/relay-sub/relayctl to use (default .build/release)
#   NATS_SERVER     nats-server binary (default: on PATH or /usr/sbin/nats-server)
#   CLUSTER_RESET=1 delete dev/cluster (the JetStream stores and edge data) first
#   CLUSTER_WAIT=30 seconds to wait for the cluster and the edges to come up
set -euo pipefail

CHECK=0
[[ ${1:-} == --check ]] && CHECK=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${RELAY_BIN_DIR:-$ROOT/.build/release}"
PKI="$ROOT/dev/pki"
STATE="$ROOT/dev/cluster"
CONF="$ROOT/config/cluster"
WAIT="${CLUSTER_WAIT:-30}"
NATS_SERVER="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

[[ -x $NATS_SERVER ]] || die "nats-server not found (apt-get install nats-server, or make deps)"
# The printed commands use all four tools from the same directory.
for tool in relayd relay-pub relay-sub relayctl; do
  [[ -x $BIN/$tool ]] || die "$BIN/$tool is not built (make release, or set RELAY_BIN_DIR to a directory with all four tools)"
done
[[ -f $PKI/ca.pem && -f $PKI/ca.key ]] || die "no dev PKI in $PKI (make pki)"

# shellcheck source=scripts/cluster-lib.sh
source "$ROOT/scripts/cluster-lib.sh"
# NATS certificates from the dev CA, made once (cluster-lib.sh).
issue_nats_cert "$PKI" nats-node serverAuth,clientAuth
issue_nats_cert "$PKI" nats-client clientAuth

# Fixed ports (the configs name them): say which one is taken.
for port in 4222 4223 4224 6222 6223 6224 8222 8223 8224 7443 7444 9464 9465; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "127.0.0.1:$port is in use (another make cluster, or make run?); stop that first"
  fi
done

[[ ${CLUSTER_RESET:-0} == 1 ]] && rm -rf "$STATE"
mkdir -p "$STATE"/{n1,n2,n3,edge-a,edge-b}
# relayd warns about a data directory others can read (it holds every message).
chmod 700 "$STATE"/edge-a "$STATE"/edge-b

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  log "stopping ${#PIDS[@]} processes"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

# nats-server resolves the relative paths of its config against its working directory.
for n in 1 2 3; do
  (cd "$CONF" && exec "$NATS_SERVER" -c "nats-n$n.conf" -l "$STATE/n$n.log") &
  PIDS+=($!)
done

wait_nats_healthy "$WAIT" 8222 8223 8224 || die "the NATS nodes are not all healthy after ${WAIT}s (logs: $STATE/n*.log)"
log "NATS cluster formed: $(curl -fs http://127.0.0.1:8222/jsz | sed -n 's/.*"leader": *"\([^"]*\)".*/meta leader \1/p' | head -n 1)"

# One edge after the other, each given up to 3 starts: right after the nodes
# (re)start, /healthz may already be ok while the stream is still being
# recovered, and relayd then gives up opening it after 5 s ("the replicated
# log is unavailable"); two edges creating the stream at once raced the same way.
for e in a b; do
  for try in 1 2 3; do
    "$BIN/relayd" --config "$CONF/edge-$e.toml" > "$STATE/edge-$e.log" 2>&1 &
    pid=$!
    if wait_relayd_listening "$WAIT" "$STATE/edge-$e.log" "$pid"; then break; fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ((try < 3)) || die "edge $e did not start: $(tail -n 5 "$STATE/edge-$e.log")"
    log "edge $e did not start (try $try): $(tail -n 1 "$STATE/edge-$e.log" | cut -c1-200); starting it again"
    sleep 1
  done
  PIDS+=("$pid")
done

NAMES=(n1 n2 n3 "edge A" "edge B")
cd "$ROOT"
P="--ca dev/pki/ca.pem"
OPS="$P --cert dev/pki/operator.pem --key dev/pki/operator.key"

if ((CHECK)); then
  # What a person would type, checked: subscribe on B, publish on A, status on both.
  fail() {
    log "check failed: $*"
    for e in a b; do log "edge $e log, last lines:"; tail -n 3 "$STATE/edge-$e.log" | cut -c1-300 >&2; done
    exit 1
  }
  token="check-$$-$RANDOM"
  "$BIN/relay-sub" --server 127.0.0.1:7444,127.0.0.1:7443 $OPS --topic 'billing.>' --count 1 --timeout 20 \
    > "$STATE/check-sub.out" 2> "$STATE/check-sub.err" &
  sub=$!
  # The subscription is open once edge B lists it (polled: relay-sub prints nothing until a message).
  deadline=$((SECONDS + 15))
  until "$BIN/relayctl" subscriptions --server 127.0.0.1:7444 $OPS 2>/dev/null | grep -q 'billing\.>'; do
    ((SECONDS < deadline)) || fail "relay-sub's subscription never showed on edge B: $(cat "$STATE/check-sub.err")"
    sleep 0.2
  done
  "$BIN/relay-pub" --server 127.0.0.1:7443,127.0.0.1:7444 $P --cert dev/pki/billing.pem --key dev/pki/billing.key \
    --topic billing.billing-service.invoice --message "$token" || fail "relay-pub through edge A exited $?"
  wait "$sub" || fail "relay-sub through edge B exited $?: $(cat "$STATE/check-sub.err")"
  grep -q "$token" "$STATE/check-sub.out" || fail "relay-sub on edge B did not print the message: $(cat "$STATE/check-sub.out")"
  log "check: published through edge A, received through edge B"
  for port in 7443 7444; do
    "$BIN/relayctl" status --server "127.0.0.1:$port" $OPS | grep -q '^version' || fail "relayctl status on 127.0.0.1:$port"
  done
  log "check: relayctl status answers on both edges"
  leader=$(curl -fs 'http://127.0.0.1:8222/jsz?accounts=true&streams=true' | grep -A6 '"name": "RELAY"' | grep -m1 '"leader"' || true)
  [[ -n $leader ]] || fail "no leader for stream RELAY in /jsz"
  log "check: stream RELAY has a leader (${leader//[[:space:]]/})"
  stop_all
  for i in "${!PIDS[@]}"; do
    if kill -0 "${PIDS[$i]}" 2>/dev/null; then fail "${NAMES[$i]} (pid ${PIDS[$i]}) still runs after the stop"; fi
  done
  log "check: all ${#PIDS[@]} processes stopped"
  log "check passed"
  exit 0
fi

cat <<EOF

Relay cluster up: NATS n1 n2 n3 (tls://127.0.0.1:4222-4224, monitoring http://127.0.0.1:8222-8224),
edge A 127.0.0.1:7443, edge B 127.0.0.1:7444. Logs in dev/cluster/. From $ROOT, try:

  # subscribe through edge B (moves to edge A by itself when B is gone):
  $BIN/relay-sub --server 127.0.0.1:7444,127.0.0.1:7443 $OPS --topic 'billing.>'

  # publish through edge A: the PUBACK comes after 2 of 3 NATS nodes hold the message
  $BIN/relay-pub --server 127.0.0.1:7443,127.0.0.1:7444 $P \\
      --cert dev/pki/billing.pem --key dev/pki/billing.key --topic billing.billing-service.invoice --message hello

  # each edge's status, connections and subscriptions (operators have admin; durables, topics,
  # purge and backup answer admin_not_supported on the jetstream backend, see docs/cluster.md):
  $BIN/relayctl status --server 127.0.0.1:7443 $OPS
  $BIN/relayctl subscriptions --server 127.0.0.1:7444 $OPS

  # the stream leader (kill -9 its pid below to watch a leader election; publishes wait 3-5 s):
  curl -s 'http://127.0.0.1:8222/jsz?accounts=true&streams=true' | grep -A6 '"name": "RELAY"' | grep -m1 '"leader"'

Process ids: n1 ${PIDS[0]}, n2 ${PIDS[1]}, n3 ${PIDS[2]}, edge A ${PIDS[3]}, edge B ${PIDS[4]}.
A process that exits (kill -9) stops nothing else. Ctrl-C stops all.
EOF

# Until Ctrl-C: report each process that exits, keep the others running.
set +e
running=("${PIDS[@]}")
while ((${#running[@]})); do
  done_pid=""
  wait -n -p done_pid "${running[@]}"
  status=$?
  [[ -n $done_pid ]] || break  # nothing left to wait for
  for i in "${!PIDS[@]}"; do
    if [[ ${PIDS[$i]} == "$done_pid" ]]; then
      log "${NAMES[$i]} (pid $done_pid) exited with status $status; the others keep running (Ctrl-C stops all; logs in dev/cluster/)"
    fi
  done
  still=()
  for pid in "${running[@]}"; do [[ $pid == "$done_pid" ]] || still+=("$pid"); done
  running=("${still[@]}")
done
log "every process has exited"
