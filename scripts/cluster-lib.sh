# cluster-lib.sh - shared by scripts/cluster.sh and scripts/bench-cluster.sh (sourced).

# issue_nats_cert PKI_DIR NAME EKU: a certificate from PKI_DIR/ca.{pem,key}
# (openssl CLI) with SAN 127.0.0.1/localhost, unless NAME.pem exists.
#   nats-node   serverAuth,clientAuth (the nodes dial each other's routes)
#   nats-client clientAuth (what an edge, or the direct bench, shows NATS)
issue_nats_cert() {
  local pki=$1 name=$2 eku=$3 ext
  [[ -f $pki/$name.pem && -f $pki/$name.key ]] && return 0
  ext="$(mktemp)"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' "$eku" > "$ext"
  (umask 077; openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$name.key" \
    -subj "/CN=$name" -out "$pki/$name.csr" 2>/dev/null)
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -extfile "$ext" -out "$pki/$name.pem" 2>/dev/null
  rm -f "$ext" "$pki/$name.csr"
}

# wait_nats_healthy DEADLINE_SECONDS PORT...: every node's /healthz is ok
# (JetStream current with an elected meta leader). Polled: formation and the
# election are announced only in the nodes' logs.
wait_nats_healthy() {
  local deadline=$((SECONDS + $1)) port
  shift
  for port in "$@"; do
    until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
      ((SECONDS < deadline)) || return 1
      sleep 0.2
    done
  done
}

# wait_relayd_listening DEADLINE_SECONDS LOG PID: relayd printed its listening
# line; fails at once when PID exited (e.g. a config error), else at the deadline.
wait_relayd_listening() {
  local deadline=$((SECONDS + $1))
  # Plain or logfmt (msg="relayd listening on ...") log lines.
  until grep -q "relayd listening on " "$2" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# start_nats_nodes WORK PKI_DIR BASE NATS_SERVER: three nats-server nodes on
# 127.0.0.1 (clients BASE..BASE+2, routes +1000, monitoring +2000), mTLS on
# clients and routes with PKI_DIR's nats-node certificate, JetStream stores
# and logs under WORK/n1..n3 (made here). Appends their PIDs to the caller's
# PIDS array and sets URLS to the comma-separated client URLs; the caller
# waits for them (wait_nats_healthy) and stops them.
start_nats_nodes() {
  local work=$1 pki=$2 base=$3 server=$4 i n tls routes
  routes="\"tls://127.0.0.1:$((base + 1000))\", \"tls://127.0.0.1:$((base + 1001))\", \"tls://127.0.0.1:$((base + 1002))\""
  tls="tls { cert_file: \"$pki/nats-node.pem\", key_file: \"$pki/nats-node.key\", ca_file: \"$pki/ca.pem\", verify: true, timeout: 5 }"
  URLS=""
  for i in 0 1 2; do
    n=$((i + 1))
    mkdir -p "$work/n$n"
    cat > "$work/n$n.conf" <<EOF
server_name: n$n
listen: 127.0.0.1:$((base + i))
http: 127.0.0.1:$((base + 2000 + i))
$tls
jetstream { store_dir: "$work/n$n" }
cluster { name: bench, listen: 127.0.0.1:$((base + 1000 + i)), no_advertise: true, $tls, routes: [$routes] }
EOF
    "$server" -c "$work/n$n.conf" -l "$work/n$n.log" &
    PIDS+=($!)
    URLS="$URLS${URLS:+,}tls://127.0.0.1:$((base + i))"
  done
}
