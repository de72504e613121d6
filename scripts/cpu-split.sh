#!/bin/bash
# cpu-split.sh RELEASE_DIR [fsync|async]: relayd user and system CPU, context switches,
# read/write syscalls and minor faults per message for 1:1 128 B (relayctl bench pubsub
# --server against `relayctl bench serve`; N=200000 by default, after a 20,000 warm-up).
set -u
BIN=$1; MODE=${2:-fsync}; N=${N:-200000}
W=$(mktemp -d /tmp/sysprobe.XXXX)
"$BIN/relayctl" bench serve --durability $MODE --work-dir $W > $W/serve.json 2>$W/serve.err &
SP=$!
for i in $(seq 50); do grep -q '^{' $W/serve.json 2>/dev/null && break; sleep 0.1; done
read PORT PID CA CERT KEY < <(python3 -c "import json;d=json.load(open('$W/serve.json'));print(d['port'],d['pid'],d['ca'],d['cert'],d['key'])")
snap() { python3 - "$PID" <<'PY'
import sys,os,glob
pid=sys.argv[1]
st=open(f"/proc/{pid}/stat").read().rsplit(')',1)[1].split()
ut,stt=int(st[11]),int(st[12]); mf=int(st[7])
vol=inv=0
for t in glob.glob(f"/proc/{pid}/task/*/status"):
    for l in open(t):
        if l.startswith("voluntary_ctxt_switches"): vol+=int(l.split()[1])
        if l.startswith("nonvoluntary_ctxt_switches"): inv+=int(l.split()[1])
io=dict(l.split(':') for l in open(f"/proc/{pid}/io"))
print(ut,stt,vol,inv,int(io['syscr']),int(io['syscw']),mf)
PY
}
"$BIN/relayctl" bench pubsub --server 127.0.0.1:$PORT --ca $CA --cert $CERT --key $KEY --size 128 --count 20000 --window 1000 --warmup 0 --json > /dev/null
A=$(snap)
"$BIN/relayctl" bench pubsub --server 127.0.0.1:$PORT --ca $CA --cert $CERT --key $KEY --broker-pid $PID --size 128 --count $N --window 1000 --warmup 0 --json > $W/out.json
B=$(snap)
python3 - "$A" "$B" "$N" $W/out.json <<'PY'
import sys,json
a=list(map(int,sys.argv[1].split())); b=list(map(int,sys.argv[2].split())); n=int(sys.argv[3])
d=[y-x for x,y in zip(a,b)]
r=json.loads(open(sys.argv[4]).read().splitlines()[-1])
hz=100
print(f"msg/s {r['published_msgs_per_sec']:.0f}  user {d[0]/hz/n*1e6:.2f} us/msg  sys {d[1]/hz/n*1e6:.2f} us/msg  vol_cs {d[2]/n:.3f}/msg inv_cs {d[3]/n:.3f}/msg  read_syscalls {d[4]/n:.3f}/msg write_syscalls {d[5]/n:.3f}/msg minflt {d[6]/n:.3f}/msg")
PY
kill $SP; wait $SP 2>/dev/null; rm -rf $W
