#!/bin/bash
# cpu-profile.sh RELEASE_DIR [fsync|async]: where relayd's CPU goes for 1:1 128 B, kernel included.
#
# Starts `relayctl bench serve`, warms it with 20,000 messages, then samples relayd
# (`perf record -e cpu-clock -F 2000 -g`, every thread, user and kernel) while
# `relayctl bench pubsub --server` sends N=400000 more. Prints each sample's share by
# user-space library and, for kernel samples, by what the kernel was doing (its call
# chain): the store's flushes, its page writes, the socket, the thread hand-offs
# (eventfd/futex wake-ups, epoll_wait, scheduling), page faults. Shares are of relayd's
# CPU; multiply by `brk_us` for microseconds per message. Needs perf with
# perf_event_paranoid <= 2 (root), python3. docs/performance.md ("Wave 26") uses it.
set -u
BIN=$1; MODE=${2:-fsync}; N=${N:-400000}
command -v perf >/dev/null || { echo "cpu-profile: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
W=$(mktemp -d /tmp/cpuprofile.XXXX)
"$BIN/relayctl" bench serve --durability $MODE --work-dir $W > $W/serve.json 2>$W/serve.err &
SP=$!
for i in $(seq 50); do grep -q '^{' $W/serve.json 2>/dev/null && break; sleep 0.1; done
read PORT PID CA CERT KEY < <(python3 -c "import json;d=json.load(open('$W/serve.json'));print(d['port'],d['pid'],d['ca'],d['cert'],d['key'])")
bench() { "$BIN/relayctl" bench pubsub --server 127.0.0.1:$PORT --ca $CA --cert $CERT --key $KEY --size 128 \
  --count $1 --window 1000 --warmup 0 --json; }
bench 20000 > /dev/null
perf record -q -e cpu-clock -F 2000 -g -p $PID -o $W/perf.data 2>$W/perf.err &
PP=$!
sleep 0.5   # perf attaches to every thread before the measured run starts
bench $N | tail -1 > $W/out.json
kill -INT $PP; wait $PP
kill $SP; wait $SP 2>/dev/null
python3 -c "import json;d=json.load(open('$W/out.json'));print(f\"$MODE: {d['published_msgs_per_sec']:.0f} msg/s, ok {d['ok']}\")"
perf script -i $W/perf.data 2>/dev/null | python3 -c '
import sys, collections
# First match wins: a flush also passes through ext4 code, a page write through the VFS.
kernel_kinds = [
    ("store: flushes (fdatasync, O_DSYNC meta, the virtio kick)",
     ["fdatasync", "file_write_and_wait", "jbd2", "blk_", "submit_bio", "ext4_sync_file", "generic_write_sync"]),
    ("store: page writes (pwrite/writev into the page cache)",
     ["ext4_", "generic_perform_write", "copy_folio", "block_write", "mark_buffer_dirty", "filemap_"]),
    ("socket (TLS records over loopback TCP)",
     ["tcp_", "sock_", "skb", "inet_", "ip_", "loopback", "__netif", "do_softirq"]),
    ("hand-offs: wake-ups (eventfd, futex)", ["eventfd", "futex"]),
    ("hand-offs: epoll_wait", ["epoll"]),
    ("hand-offs: scheduling", ["schedule", "finish_task_switch"]),
    ("page faults, madvise, munmap", ["page_fault", "madvise", "munmap", "mmap"]),
]
total = 0
kernel = collections.Counter()
user = collections.Counter()
def sample(stack):
    global total
    if not stack:
        return
    total += 1
    symbol, dso = stack[0]
    if "kernel" not in dso:
        user[dso.rsplit("/", 1)[-1]] += 1
        return
    chain = " ".join(s for s, _ in stack)
    for name, keys in kernel_kinds:
        if any(k in chain for k in keys):
            kernel[name] += 1
            return
    kernel["other"] += 1
stack = []
for line in sys.stdin:
    line = line.rstrip()
    if not line:
        sample(stack); stack = []
    elif line[0] in "\t ":
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[1].endswith(")"):
            symbol, dso = parts[1].rsplit(" (", 1)
            stack.append((symbol.split("+0x")[0], dso[:-1]))
    else:
        sample(stack); stack = []
sample(stack)
if total == 0:
    sys.exit("cpu-profile: perf recorded no samples")
print(f"samples {total}; kernel {100 * sum(kernel.values()) / total:.1f} % of relayd CPU")
for name, n in kernel.most_common():
    print(f"  kernel  {name:58s} {100 * n / total:5.1f} %")
for name, n in user.most_common(8):
    print(f"  user    {name:58s} {100 * n / total:5.1f} %")
'
rm -rf $W
