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
