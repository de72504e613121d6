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
# Ctrl-C or when any of them exits. State lives in dev/cluster/ (kept across
# runs; CLUSTER_RESET=1 wipes it first).
#
# Knobs (environment):
#   RELAY_BIN_DIR   relayd/relay-pub/relay-sub to use (default .build/release)
#   NATS_SERVER     nats-server binary (default: on PATH or /usr/sbin/nats-server)
#   CLUSTER_RESET=1 delete dev/cluster (the JetStream stores and edge data) first
#   CLUSTER_WAIT=30 seconds to wait for the cluster and the edges to come up
set -euo pipefail

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
[[ -x $BIN/relayd ]] || die "$BIN/relayd is not built (make release)"
[[ -f $PKI/ca.pem && -f $PKI/ca.key ]] || die "no dev PKI in $PKI (make pki)"

# shellcheck source=scripts/cluster-lib.sh
source "$ROOT/scripts/cluster-lib.sh"
# NATS certificates from the dev CA, made once (cluster-lib.sh).
issue_nats_cert "$PKI" nats-node serverAuth,clientAuth
issue_nats_cert "$PKI" nats-client clientAuth

[[ ${CLUSTER_RESET:-0} == 1 ]] && rm -rf "$STATE"
mkdir -p "$STATE"/{n1,n2,n3,edge-a,edge-b}

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  log "stopping ${#PIDS[@]} processes"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all INT TERM EXIT

# nats-server resolves the relative paths of its config against its working directory.
for n in 1 2 3; do
  (cd "$CONF" && exec "$NATS_SERVER" -c "nats-n$n.conf" -l "$STATE/n$n.log") &
  PIDS+=($!)
done

wait_nats_healthy "$WAIT" 8222 8223 8224 || die "the NATS nodes are not all healthy after ${WAIT}s (logs: $STATE/n*.log)"
log "NATS cluster formed: $(curl -fs http://127.0.0.1:8222/jsz | sed -n 's/.*"leader": *"\([^"]*\)".*/meta leader \1/p' | head -n 1)"

for e in a b; do
  "$BIN/relayd" --config "$CONF/edge-$e.toml" > "$STATE/edge-$e.log" 2>&1 &
  PIDS+=($!)
done
for e in a b; do
  pid=${PIDS[3]}; [[ $e == b ]] && pid=${PIDS[4]}
  wait_relayd_listening "$WAIT" "$STATE/edge-$e.log" "$pid" || die "edge $e did not start: $(tail -n 5 "$STATE/edge-$e.log")"
done

P="--ca dev/pki/ca.pem"
cat <<EOF

Relay cluster up: NATS n1 n2 n3 (tls://127.0.0.1:4222-4224, monitoring http://127.0.0.1:8222-8224),
edge A 127.0.0.1:7443, edge B 127.0.0.1:7444. Logs in dev/cluster/. From $ROOT, try:

  # subscribe through edge B (falls back to edge A when B is gone):
  $BIN/relay-sub --server 127.0.0.1:7444,127.0.0.1:7443 $P \\
      --cert dev/pki/operator.pem --key dev/pki/operator.key --topic 'billing.>'

  # publish through edge A: the PUBACK comes after 2 of 3 NATS nodes hold the message
  $BIN/relay-pub --server 127.0.0.1:7443,127.0.0.1:7444 $P \\
      --cert dev/pki/billing.pem --key dev/pki/billing.key --topic billing.billing-service.invoice --message hello

  # where the stream leader is, and kill -9 a node to watch the failover:
  curl -s 'http://127.0.0.1:8222/jsz?accounts=true&streams=true' | grep -m1 '"leader"'

Process ids: NATS ${PIDS[0]} ${PIDS[1]} ${PIDS[2]}, edge A ${PIDS[3]}, edge B ${PIDS[4]}.
Ctrl-C stops all.
EOF

# Until Ctrl-C, or until one of them exits (then stop the rest and say which).
set +e
wait -n "${PIDS[@]}"
status=$?
log "a process exited (status $status); see dev/cluster/*.log"
exit "$status"
