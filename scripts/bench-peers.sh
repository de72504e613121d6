#!/usr/bin/env bash
# bench-peers.sh - Relay next to Mosquitto and NATS on this machine, in one table.
#
# 1. builds relayctl and relayd (release) unless SKIP_BUILD=1;
# 2. runs `relayctl bench` with the peers' knobs (each run starts its own relayd
#    with a temporary PKI and data dir): 1 pub/1 sub at every size in SIZES,
#    fan-out to FANOUT subscribers, once per durability mode in RELAY_DURABILITY,
#    plus the Relay-only targets (replay, connect, idle); and the same cases
#    again with the C + OpenSSL load generator scripts/relay_bench.c (compiled
#    with cc into the run dir) against a relayd that `relayctl bench serve`
#    starts with the very same PKI, config and durability, so the only
#    difference between a "swift" row and a "c" row is the client;
# 3. runs the peer harness where it lies ($PEERS_DIR/setup.sh, then run.sh);
# 4. joins both results.jsonl streams into one table with ratios, and checks
#    the performance targets (docs/performance.md).
#
# Knobs (environment; the peers' run.sh reads the same names):
#   PEERS_DIR        the peer harness (default ../shared/peers next to the repo)
#   N=200000 SIZES="128 4096" WINDOW=1000 FANOUT=4 FANOUT_SIZE=128
#   SCEN_TIMEOUT=45 WARMUP=20000 PIN=0
#   RELAY_DURABILITY="fsync async"   relayd modes to measure
#   RELAY_CLIENTS="swift c"          load generators for Relay: swift = relayctl bench, c = scripts/relay_bench.c
#                                    (idle and disk are measured by relayctl only)
#   REPLAY_N=1000000 CONNECT_N=2000 IDLE_N=2000   Relay-only scenarios (0 skips)
#   RATE=10000 RATE_N=50000          publish->ack latency at RATE msg/s offered (open loop; 0 skips)
#   BROKERS="mosquitto nats"          peers to run (PEERS=0 skips the peers)
#   SCRATCH=.build-bench-release     SwiftPM scratch path of the release build
#   RELAY_BIN_DIR                    use relayctl/relayd from this directory, build nothing
#   BENCH_WORKDIR                    default ${TMPDIR:-/tmp}/peer-bench (as setup.sh/run.sh)
#   BENCH_CLUSTER=1                  also the cluster case (scripts/bench-cluster.sh): acked msg/s and
#                                    p99 publish->ack through one relayd edge on a 3-node R3 JetStream
#                                    stream next to direct nats.c to the same stream, in the same run
#                                    (CLUSTER_N=20000 CLUSTER_ROUNDS=3; off by default; rows of an
#                                    earlier run: --cluster-table DIR/cluster.jsonl)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/peers}"
export N="${N:-200000}" SIZES="${SIZES:-128 4096}" WINDOW="${WINDOW:-1000}" FANOUT="${FANOUT:-4}"
export FANOUT_SIZE="${FANOUT_SIZE:-128}" SCEN_TIMEOUT="${SCEN_TIMEOUT:-45}" WARMUP="${WARMUP:-20000}" PIN="${PIN:-0}"
export BROKERS="${BROKERS:-mosquitto nats}"
RELAY_DURABILITY="${RELAY_DURABILITY:-fsync async}"
RELAY_CLIENTS="${RELAY_CLIENTS:-swift c}"
REPLAY_N="${REPLAY_N:-1000000}"
CONNECT_N="${CONNECT_N:-2000}"
IDLE_N="${IDLE_N:-2000}"
RATE="${RATE:-10000}"
RATE_N="${RATE_N:-50000}"
PEERS="${PEERS:-1}"
SCRATCH="${SCRATCH:-$ROOT/.build-bench-release}"
WORK="${BENCH_WORKDIR:-${TMPDIR:-/tmp}/peer-bench}"
SWIFT="${SWIFT:-swift}"

log() { printf '[bench-peers] %s\n' "$*" >&2; }
die() { printf '[bench-peers] error: %s\n' "$*" >&2; exit 1; }

# join_table RELAY.jsonl PEERS.jsonl: one table, Relay's rows first in each case,
# ratios = Relay's acked msg/s ÷ the peer's; then the targets of docs/performance.md.
join_table() {
  awk -v sizes="$SIZES" -v fanout="$FANOUT" -v fsize="$FANOUT_SIZE" -v clients="${RELAY_CLIENTS:-swift c}" '
function get(k,    r) {
  if (match($0, "\"" k "\":(\"[^\"]*\"|[^,}]*)")) {
    r = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
    gsub(/"/, "", r)
    return r
  }
  return ""
}
function ms(v) { return (v == "" || v <= 0) ? "-" : sprintf("%.2f", v / 1000) }
function num(v) { return (v == "" || v <= 0) ? "-" : sprintf("%.0f", v) }
function perMsg(cpu, n) { return (cpu == "" || n == "" || n <= 0) ? "-" : sprintf("%.1f", cpu * 1e6 / n) }
function ratio(a, b) { return (a == "" || b == "" || b <= 0 || a <= 0) ? "-" : sprintf("%.2fx", a / b) }
function add(c, line) { rows[c, ++nrows[c]] = line }
FNR == 1 { file++ }
!/^\{/ { next }
file == 1 {   # relayctl bench ("client":"relay-swift", or none in older results) and relay_bench.c ("relay-c")
  sc = get("scenario"); sz = get("size"); mode = get("durability")
  cl = (get("client") == "relay-c") ? "c" : "swift"; seen[cl] = 1
  okv = get("ok") == "true" ? "yes" : "NO"
  if (sc == "pubsub" && get("offered_msgs_per_sec") != "" && get("offered_msgs_per_sec") != "null") { paced[mode, cl] = $0; next }
  if (sc == "pubsub") c = "1to1 " sz
  else if (sc == "fanout") c = "fanout"
  else { extra[sc, cl] = $0; if (sc == "disk") disk = $0; next }
  pub[c, mode, cl] = get("published_msgs_per_sec")
  del[c, mode, cl] = get("delivered_msgs_per_sec")
  p99[c, mode, cl] = get("publish_ack_p99_us")
  mbs[c, mode, cl] = get("mb_per_sec")
  if (index(modes[c] " ", " " mode " ") == 0) modes[c] = modes[c] " " mode
  add(c, sprintf(fmt0, "relay (" mode ") " cl " client", sz, get("subscribers"), num(get("published_msgs_per_sec")), \
    sprintf("%.2f", get("mb_per_sec")), num(get("delivered_msgs_per_sec")), ms(get("publish_ack_p50_us")), \
    ms(get("publish_ack_p99_us")), ms(get("e2e_p50_us")), ms(get("e2e_p99_us")), get("lost"), \
    perMsg(get("broker_cpu_s"), get("published")), perMsg(get("client_cpu_s"), get("published")), okv))
  next
}
{             # the peers run.sh
  if (get("tool") == "-") { skipped = skipped sprintf("%-11s %-21s %s\n", get("broker"), get("scenario"), get("error")); next }
  sc = get("scenario"); sz = get("size")
  c = (sc ~ /_fanout$/) ? "fanout" : "1to1 " sz
  kind = (sc ~ /^mqtt/) ? "mosq" : (sc ~ /^js/) ? "js" : "core"
  peer[c, kind] = get("pub_msgs_per_s")
  okv = get("ok") == "true" ? "yes" : "NO"
  add(c, sprintf(fmt0, get("broker") " " sc, sz, get("subs"), num(get("pub_msgs_per_s")), get("pub_mb_per_s"), \
    num(get("e2e_msgs_per_s")), ms(get("ack_p50_us")), ms(get("ack_p99_us")), ms(get("e2e_p50_us")), \
    ms(get("e2e_p99_us")), get("lost"), perMsg(get("broker_cpu_s"), get("published")), \
    perMsg(get("client_cpu_s"), get("published")), okv))
}
BEGIN {
  fmt0 = "%-34s %5s %4s %10s %8s %10s %7s %7s %7s %7s %5s %7s %7s %3s"
  hdr = sprintf(fmt0, "broker / scenario", "size", "subs", "pub_msg/s", "pub_MB/s", "e2e_msg/s", "ack50", "ack99", \
    "e2e50", "e2e99", "lost", "brk_us", "cli_us", "ok")
  hdr2 = sprintf(fmt0, "", "B", "", "(acked)", "", "(deliv.)", "ms", "ms", "ms", "ms", "", "/msg", "/msg", "")
}
END {
  n = split(sizes, S, " ")
  for (i = 1; i <= n; i++) order[++no] = "1to1 " S[i]
  if (fanout > 0) order[++no] = "fanout"
  printf "%s %9s %9s %9s\n%s\n", hdr, "vs_mosq", "vs_js", "vs_core", hdr2
  for (o = 1; o <= no; o++) {
    c = order[o]
    title = (c == "fanout") ? "fan-out: 1 publisher -> " fanout " subscribers, " fsize " B" : "1 publisher -> 1 subscriber, " substr(c, 6) " B"
    printf "-- %s\n", title
    for (r = 1; r <= nrows[c]; r++) {
      line = rows[c, r]
      if (line ~ /^relay \(/) {
        mode = line; sub(/^relay \(/, "", mode); sub(/\).*/, "", mode)
        cl = line; sub(/^relay \([^)]*\) /, "", cl); sub(/ .*/, "", cl)
        line = line sprintf(" %9s %9s %9s", ratio(pub[c, mode, cl], peer[c, "mosq"]), ratio(pub[c, mode, cl], peer[c, "js"]), \
          ratio(pub[c, mode, cl], peer[c, "core"]))
      }
      print line
    }
  }
  if (skipped != "") printf "%s", skipped
  # The targets, for the first durability mode measured (fsync by default), once per client:
  # the Swift client figures are never replaced by the C client figures; each block names its client.
  nc = split(clients, CL, " ")
  for (ci = 1; ci <= nc; ci++) if (seen[CL[ci]]) targets(CL[ci])
}
function targets(cl,    c, m, M) {
  c = "1to1 128"; split(modes[c], M, " "); m = M[1]
  print ""
  print "targets (relay " m ", " cl " client):"
  tgt("1:1 128 B acked msg/s >= 2x NATS JetStream", pub[c, m, cl], 2 * peer[c, "js"], ratio(pub[c, m, cl], peer[c, "js"]))
  tgt("1:1 128 B acked msg/s >= 6x Mosquitto", pub[c, m, cl], 6 * peer[c, "mosq"], ratio(pub[c, m, cl], peer[c, "mosq"]))
  tgtMax("publish->ack p99 <= 5 ms at full load (1:1 128 B)", p99[c, m, cl], 5000, ms(p99[c, m, cl]) " ms")
  if (disk != "") {
    $0 = disk
    printf "  %-52s %14s\n", "(disk: the two flushes of one LMDB commit, p50 / p99)", ms(get("sync_p50_us")) " / " ms(get("sync_p99_us")) " ms"
  }
  if (paced[m, cl] != "") {
    $0 = paced[m, cl]
    tgtMax("publish->ack p99 <= 1 ms at " num(get("offered_msgs_per_sec")) " msg/s offered", get("publish_ack_p99_us"), 1000, ms(get("publish_ack_p99_us")) " ms")
  }
  tgt("fan-out to " fanout " >= 1,000,000 deliveries/s", del["fanout", m, cl], 1000000, num(del["fanout", m, cl]) "/s")
  tgt("4 KiB >= 400 MB/s (acked payload)", mbs["1to1 4096", m, cl], 400, sprintf("%.1f MB/s", mbs["1to1 4096", m, cl]))
  $0 = extra["replay", cl]
  tgt("replay of " get("count") " >= 2,000,000 msg/s", get("delivered_msgs_per_sec"), 2000000, num(get("delivered_msgs_per_sec")) "/s")
  $0 = extra["connect", cl]
  tgt("mTLS handshakes >= 1,000/s", get("handshakes_per_sec"), 1000, num(get("handshakes_per_sec")) "/s")
  if (extra["idle", cl] != "") {
    $0 = extra["idle", cl]
    v = get("rss_per_connection_bytes")
    tgtMax("idle RSS <= 64 KiB per connection over " get("count"), v, 65536, (v == "" ? "-" : sprintf("%.1f KiB", v / 1024)))
  }
  # The async mode, for users who accept a window of loss as JetStream does.
  if (pub[c, "async", cl] != "") {
    print ""
    print "targets (relay async, " cl " client):"
    tgt("1:1 128 B acked msg/s >= 70% of NATS core", pub[c, "async", cl], 0.7 * peer[c, "core"], ratio(pub[c, "async", cl], peer[c, "core"]))
    if (paced["async", cl] != "") {
      $0 = paced["async", cl]
      tgtMax("publish->ack p99 <= 1 ms at " num(get("offered_msgs_per_sec")) " msg/s offered", get("publish_ack_p99_us"), 1000, ms(get("publish_ack_p99_us")) " ms")
    }
  }
}
function tgt(name, value, need, shown) {
  if (value == "" || need == "" || need <= 0) { printf "  %-52s %14s  n/a\n", name, shown; return }
  printf "  %-52s %14s  %s\n", name, shown, (value + 0 >= need + 0) ? "met" : "MISSED"
}
function tgtMax(name, value, limit, shown) {
  if (value == "" || value <= 0) { printf "  %-52s %14s  n/a\n", name, shown; return }
  printf "  %-52s %14s  %s\n", name, shown, (value + 0 <= limit + 0) ? "met" : "MISSED"
}
' "$1" "$2"
}

# cluster_table CLUSTER.jsonl: the median of the rounds of each side, and the ratio.
cluster_table() {
  awk '
function get(k,    r) {
  if (match($0, "\"" k "\":(\"[^\"]*\"|[^,}]*)")) {
    r = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); gsub(/"/, "", r); return r
  }
  return ""
}
function median(a, n,    i, j, t) {
  for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return n == 0 ? 0 : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
}
/^\{/ {
  s = get("side")
  r = (s == "edge") ? get("published_msgs_per_sec") : get("acked_msgs_per_sec")
  rate[s, ++n[s]] = r + 0; p99[s, n[s]] = get("publish_ack_p99_us") / 1000
  if (get("ok") != "true") bad[s]++
}
END {
  for (k = 1; k <= n["edge"]; k++) { er[k] = rate["edge", k]; ep[k] = p99["edge", k] }
  for (k = 1; k <= n["direct"]; k++) { dr[k] = rate["direct", k]; dp[k] = p99["direct", k] }
  for (k = 1; k <= n["direct_id"]; k++) { ir[k] = rate["direct_id", k]; ip[k] = p99["direct_id", k] }
  e = median(er, n["edge"]); d = median(dr, n["direct"])
  printf "\n-- cluster: 1 publisher, 128 B, 3-node NATS JetStream R3 (median of %d rounds)\n", n["edge"]
  printf "%-34s %12s %10s %4s\n", "", "acked msg/s", "ack99 ms", "ok"
  printf "%-34s %12.0f %10.2f %4s\n", "Relay edge on R3 JetStream", e, median(ep, n["edge"]), bad["edge"] ? "NO" : "yes"
  printf "%-34s %12.0f %10.2f %4s\n", "direct nats.c R3", d, median(dp, n["direct"]), bad["direct"] ? "NO" : "yes"
  if (n["direct_id"] > 0)
    printf "%-34s %12.0f %10.2f %4s\n", "direct nats.c R3, Nats-Msg-Id each", median(ir, n["direct_id"]), median(ip, n["direct_id"]),
      bad["direct_id"] ? "NO" : "yes"
  printf "  %-52s %14s  %s\n", "edge acked msg/s >= 80% of direct nats.c (R3)", (d > 0 ? sprintf("%.2fx", e / d) : "-"),
    (d > 0 && e >= 0.8 * d) ? "met" : "MISSED"
}' "$1"
}

# `bench-peers.sh --cluster-table CLUSTER.jsonl` prints the cluster rows of an earlier BENCH_CLUSTER=1 run.
if [[ ${1:-} == --cluster-table ]]; then
  [[ $# -eq 2 && -r $2 ]] || die "usage: $0 --cluster-table cluster.jsonl"
  cluster_table "$2"
  exit 0
fi

# `bench-peers.sh --table RELAY.jsonl PEERS.jsonl` prints the table of an earlier run again.
if [[ ${1:-} == --table ]]; then
  [[ $# -eq 3 && -r $2 && -r $3 ]] || die "usage: $0 --table relay.jsonl peers-results.jsonl"
  join_table "$2" "$3"
  exit 0
fi

[[ $N =~ ^[0-9]+$ && $WINDOW =~ ^[0-9]+$ && $FANOUT =~ ^[0-9]+$ && $SCEN_TIMEOUT =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ ]] \
  || die "N, WINDOW, FANOUT, SCEN_TIMEOUT and WARMUP must be integers"
if [[ $PEERS == 1 ]]; then
  [[ -x $PEERS_DIR/run.sh && -x $PEERS_DIR/setup.sh ]] || die "no peer harness at $PEERS_DIR (set PEERS_DIR, or PEERS=0 for Relay only)"
fi

RELEASE_FLAGS=(-c release -Xswiftc -enforce-exclusivity=unchecked)
if [[ -n ${RELAY_BIN_DIR:-} ]]; then
  BIN="$RELAY_BIN_DIR"   # prebuilt binaries (the smoke test uses the debug build)
else
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building relayctl and relayd (release, scratch path $SCRATCH)"
    # The Makefile's RELEASE_FLAGS: release builds skip the runtime
    # exclusivity checks (the flag is not in Package.swift; see the Makefile).
    (cd "$ROOT" && "$SWIFT" build "${RELEASE_FLAGS[@]}" --scratch-path "$SCRATCH" --product relayctl >&2 \
      && "$SWIFT" build "${RELEASE_FLAGS[@]}" --scratch-path "$SCRATCH" --product relayd >&2)
  fi
  BIN="$("$SWIFT" build "${RELEASE_FLAGS[@]}" --scratch-path "$SCRATCH" --show-bin-path 2>/dev/null || echo "$SCRATCH/release")"
fi
RELAYCTL="$BIN/relayctl"
[[ -x $RELAYCTL && -x $BIN/relayd ]] || die "relayctl/relayd not built in $BIN (run without SKIP_BUILD=1)"

RUN_ID="$(date +%Y%m%d-%H%M%S)-$$"
OUT="$WORK/relay/$RUN_ID"
mkdir -p "$OUT"
RELAY_RESULTS="$OUT/relay.jsonl"
: > "$RELAY_RESULTS"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PIN_CMD=()
[[ $PIN == 1 ]] && PIN_CMD=(taskset -c 1)   # like run.sh: load generator on CPU 1 (relayd inherits it)

relay() { # scenario args...: one relayctl bench run, its JSON line appended (a failed check is kept, marked ok:false)
  local out rc
  set +e
  out=$(timeout -k 5 $((SCEN_TIMEOUT * 4 + 60)) ${PIN_CMD[@]+"${PIN_CMD[@]}"} "$RELAYCTL" bench "$@" --json \
    --timeout $((SCEN_TIMEOUT * 4)) --work-dir "$OUT" 2>>"$OUT/relayctl.stderr")
  rc=$?
  set -e
  out=$(printf '%s\n' "$out" | grep -m1 '^{' || true)
  [[ -n $out ]] || out="{\"scenario\":\"$1\",\"ok\":false,\"errors\":[\"relayctl bench exit $rc without result (see $OUT/relayctl.stderr)\"]}"
  printf '%s\n' "${out%\}},\"exit\":$rc}" >> "$RELAY_RESULTS"
  log "relay $*: exit $rc $(printf '%s' "$out" | grep -o '"published_msgs_per_sec":[0-9.]*\|"delivered_msgs_per_sec":[0-9.]*\|"handshakes_per_sec":[0-9.]*\|"rss_per_connection_bytes":[0-9.]*\|"ok":[a-z]*' | tr '\n' ' ')"
}

for client in $RELAY_CLIENTS; do
  [[ $client == swift || $client == c ]] || die "RELAY_CLIENTS holds '$client'; the clients are swift and c"
done
CBENCH="$OUT/relay_bench"
if [[ " $RELAY_CLIENTS " == *" c "* ]]; then
  command -v cc >/dev/null || die "cc is missing: the C load generator needs gcc, libc6-dev and libssl-dev (make deps installs them), or set RELAY_CLIENTS=swift"
  cc -O2 -Wall -o "$CBENCH" "$ROOT/scripts/relay_bench.c" -lssl -lcrypto -lpthread \
    || die "cannot compile scripts/relay_bench.c (it needs gcc, libc6-dev and libssl-dev: make deps installs them)"
fi

# The running `relayctl bench serve`, stopped (with its relayd) if this script ends early.
SERVE_PID=""
trap 'if [[ -n $SERVE_PID ]]; then kill -TERM "$SERVE_PID" 2>/dev/null || true; fi' EXIT

relay_c() { # mode scenario args...: `relayctl bench serve` (relayctl bench's own relayd, PKI and config), then relay_bench.c against it
  local mode=$1 serve_out="$OUT/serve.json" serve_pid info port pid ca cert key out rc i
  shift
  : > "$serve_out"
  ${PIN_CMD[@]+"${PIN_CMD[@]}"} "$RELAYCTL" bench serve --durability "$mode" --work-dir "$OUT" > "$serve_out" 2>>"$OUT/relayctl.stderr" &
  serve_pid=$!
  SERVE_PID=$serve_pid
  # Wait for its one JSON line (printed once relayd listens), or for it to exit; at most 60 s.
  for ((i = 0; i < 600; i++)); do
    grep -q '^{' "$serve_out" && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  info=$(grep -m1 '^{' "$serve_out" || true)
  field() { printf '%s' "$info" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
  port=$(field port) pid=$(field pid) ca=$(field ca) cert=$(field cert) key=$(field key)
  if [[ -z $port || -z $pid ]]; then
    out="{\"scenario\":\"$1\",\"client\":\"relay-c\",\"durability\":\"$mode\",\"ok\":false,\"errors\":[\"relayctl bench serve gave no address (see $OUT/relayctl.stderr)\"]}"
    rc=3
  else
    set +e
    out=$(timeout -k 5 $((SCEN_TIMEOUT * 4 + 60)) ${PIN_CMD[@]+"${PIN_CMD[@]}"} "$CBENCH" "$@" --port "$port" --ca "$ca" --cert "$cert" \
      --key "$key" --broker-pid "$pid" --durability "$mode" --timeout $((SCEN_TIMEOUT * 4)) 2>>"$OUT/relay_bench.stderr")
    rc=$?
    set -e
    out=$(printf '%s\n' "$out" | grep -m1 '^{' || true)
    [[ -n $out ]] || out="{\"scenario\":\"$1\",\"client\":\"relay-c\",\"durability\":\"$mode\",\"ok\":false,\"errors\":[\"relay_bench exit $rc without result (see $OUT/relay_bench.stderr)\"]}"
  fi
  kill -TERM "$serve_pid" 2>/dev/null || true   # serve stops relayd and removes its folder
  wait "$serve_pid" 2>/dev/null || true
  SERVE_PID=""
  printf '%s\n' "${out%\}},\"exit\":$rc}" >> "$RELAY_RESULTS"
  log "relay (c) $mode $*: exit $rc $(printf '%s' "$out" | grep -o '"published_msgs_per_sec":[0-9.]*\|"delivered_msgs_per_sec":[0-9.]*\|"handshakes_per_sec":[0-9.]*\|"ok":[a-z]*' | tr '\n' ' ')"
}

run_case() { # mode scenario args...: the case once per client in RELAY_CLIENTS (both take the same flags)
  local mode=$1 client
  shift
  for client in $RELAY_CLIENTS; do
    if [[ $client == swift ]]; then relay "$@" --durability "$mode"; else relay_c "$mode" "$@"; fi
  done
}

# What the disk under the data directory charges per commit, to read the latencies against.
relay disk --count 1000
log "run $RUN_ID: N=$N SIZES='$SIZES' WINDOW=$WINDOW FANOUT=$FANOUT FANOUT_SIZE=$FANOUT_SIZE WARMUP=$WARMUP PIN=$PIN durability='$RELAY_DURABILITY'"
for mode in $RELAY_DURABILITY; do
  for s in $SIZES; do
    run_case "$mode" pubsub --size "$s" --count "$N" --window "$WINDOW" --warmup "$WARMUP"
  done
  if ((FANOUT > 0)); then
    run_case "$mode" fanout --subscribers "$FANOUT" --size "$FANOUT_SIZE" --count "$N" --window "$WINDOW" --warmup "$WARMUP"
  fi
done
# Latency at a moderate offered load (open loop, paced): RATE msg/s for RATE_N messages.
if ((RATE > 0)); then
  for mode in $RELAY_DURABILITY; do
    run_case "$mode" pubsub --size 128 --count "$RATE_N" --window "$WINDOW" --rate "$RATE" --warmup "$WARMUP"
  done
fi
FIRST_MODE="${RELAY_DURABILITY%% *}"
((REPLAY_N > 0)) && run_case "$FIRST_MODE" replay --size 128 --count "$REPLAY_N" --window 4096
((CONNECT_N > 0)) && run_case "$FIRST_MODE" connect --count "$CONNECT_N" --concurrency 8
# idle measures the broker's memory per connection, not the client: relayctl only.
if ((IDLE_N > 0)) && [[ " $RELAY_CLIENTS " == *" swift "* ]]; then relay idle --durability "$FIRST_MODE" --connections "$IDLE_N"; fi

PEER_RESULTS=/dev/null
if [[ $PEERS == 1 ]]; then
  log "peers: $PEERS_DIR/setup.sh"
  "$PEERS_DIR/setup.sh" >&2
  log "peers: $PEERS_DIR/run.sh"
  "$PEERS_DIR/run.sh" 2> >(tee "$OUT/peers.stderr" >&2) > "$OUT/peers.table.txt"
  PEER_RESULTS=$(sed -n 's/^\[run\] results: //p' "$OUT/peers.stderr" | tail -1)
  [[ -r $PEER_RESULTS ]] || die "cannot find the peers' results.jsonl in $OUT/peers.stderr"
fi

join_table "$RELAY_RESULTS" "$PEER_RESULTS" | tee "$OUT/table.txt"

if [[ ${BENCH_CLUSTER:-0} == 1 ]]; then
  log "cluster: scripts/bench-cluster.sh (3 nats-server nodes, one relayd edge)"
  RELAY_BIN_DIR="$BIN" RESULTS="$OUT/cluster.jsonl" N="${CLUSTER_N:-20000}" ROUNDS="${CLUSTER_ROUNDS:-3}" SIZE=128 \
    SCEN_TIMEOUT="$SCEN_TIMEOUT" bash "$ROOT/scripts/bench-cluster.sh" >&2 || log "cluster: bench-cluster.sh failed"
  if [[ -s $OUT/cluster.jsonl ]]; then cluster_table "$OUT/cluster.jsonl" | tee -a "$OUT/table.txt"
  else log "cluster: no results (see the lines above)"; fi
fi
{
  echo "relay_run=$RUN_ID peers_results=$PEER_RESULTS"
  echo "knobs: N=$N SIZES='$SIZES' WINDOW=$WINDOW FANOUT=$FANOUT FANOUT_SIZE=$FANOUT_SIZE WARMUP=$WARMUP PIN=$PIN RELAY_CLIENTS='$RELAY_CLIENTS'"
  echo "kernel=$(uname -sr) cpus=$(nproc) cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "swift=$("$SWIFT" --version 2>/dev/null | head -1)"
  echo "relay_commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "workdir_fs=$(df -PT "$WORK" | awk 'NR==2 {print $2, $1}')"
} > "$OUT/env.txt"
log "relay results: $RELAY_RESULTS; table: $OUT/table.txt"
