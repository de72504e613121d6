#!/usr/bin/env python3
"""Instructions per message from two callgrind profiles of relayd.

scripts/icount.sh runs the same workload twice under callgrind, with N and
with 2N messages, and hands both profiles here. Start-up, the handshakes and
shutdown cost the same in both runs, so (profile(2N) - profile(N)) / N is the
cost of one more published-and-delivered message in steady state. The same
difference is taken per function and per library.

Usage: icount_report.py [--demangler CMD] [--top K] [--json FILE] LABEL N small.out big.out

Prints the totals line ("LABEL: ... Ir/msg") first, then the tables.
Only the callgrind output format is read (valgrind's docs, "Callgrind Format
Specification"): name compression "(id) name", cost lines "position costs",
and a "calls=" line whose next cost line is the callee's inclusive cost.
"""
import argparse
import collections
import json
import re
import shutil
import subprocess
import sys

RECURSION_SUFFIX = re.compile(r"'\d+$")


def parse(path):
    """Self cost, outgoing call costs and call counts per function key (object, name)."""
    events = None
    totals = None
    names = {"ob": {}, "fl": {}, "fn": {}}
    self_cost = collections.defaultdict(lambda: None)
    calls_out = collections.defaultdict(lambda: None)   # (caller, callee) -> cost vector
    call_counts = collections.Counter()                  # callee -> number of calls
    ob = fn = None
    cob = cfn = None
    pending_call = None  # callee key when the next cost line belongs to a call

    def resolve(kind, rest):
        # "(id) name" defines, "(id)" refers, a bare name is uncompressed.
        rest = rest.strip()
        if rest.startswith("("):
            close = rest.index(")")
            ident = rest[1:close]
            name = rest[close + 1:].strip()
            table = names["ob" if kind == "ob" else "fn" if kind == "fn" else "fl"]
            if name:
                table[ident] = name
            return table.get(ident, "?")
        return rest

    def add(table, key, values):
        cur = table[key]
        if cur is None:
            table[key] = list(values)
        else:
            for i, v in enumerate(values):
                cur[i] += v

    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                fields = line.split()
                # positions: line -> one position column, then the events.
                values = [int(x) for x in fields[1:]]
                values += [0] * (len(events) - len(values))
                if pending_call is not None:
                    add(calls_out, ((ob, fn), pending_call), values)
                    pending_call = None
                    cob = None
                else:
                    add(self_cost, (ob, fn), values)
                continue
            key, _, rest = line.partition("=")
            if key == "ob":
                ob = resolve("ob", rest)
            elif key == "fn":
                fn = resolve("fn", rest)
            elif key == "cob":
                cob = resolve("ob", rest)
            elif key == "cfn":
                cfn = resolve("fn", rest)
            elif key in ("fl", "fi", "fe", "cfi", "cfl"):
                resolve("fl", rest)
            elif key == "calls":
                callee = (cob if cob is not None else ob, cfn)
                call_counts[callee] += int(rest.split()[0])
                pending_call = callee
            elif line.startswith("events:"):
                events = line.split(":", 1)[1].split()
            elif line.startswith("summary:") or line.startswith("totals:"):
                totals = [int(x) for x in line.split(":", 1)[1].split()]
    if events is None or totals is None:
        sys.exit(f"icount_report: {path} is not a complete callgrind profile (no events/summary line)")
    totals += [0] * (len(events) - len(totals))
    return events, totals, self_cost, calls_out, call_counts


def inclusive(self_cost, calls_out, ir):
    """Self + calls made, for each function at its outermost level.

    callgrind names a function that is already on the stack fn'2
    (--separate-recs), so a call fn -> ... -> fn'2 is inside fn's cost and
    fn'2's own figure must not be added to it. The 'N levels are left out of
    the inclusive list and folded into fn for the self costs.
    """
    inc = collections.Counter()
    for key, values in self_cost.items():
        if not RECURSION_SUFFIX.search(key[1] or ""):
            inc[key] += values[ir]
    for (caller, callee), values in calls_out.items():
        if caller != callee and not RECURSION_SUFFIX.search(caller[1] or ""):
            inc[caller] += values[ir]
    return inc


def fold_recursion(self_cost):
    folded = {}
    for (obj, fn), values in self_cost.items():
        key = (obj, RECURSION_SUFFIX.sub("", fn or ""))
        if key in folded:
            folded[key] = [x + y for x, y in zip(folded[key], values)]
        else:
            folded[key] = list(values)
    return folded


def demangle(names, command):
    if not command or not names:
        return {n: n for n in names}
    try:
        out = subprocess.run(command.split() + ["--simplified", "--compact"], input="\n".join(names) + "\n",
                             capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return {n: n for n in names}
    return {n: (out[i] if i < len(out) and out[i] else n) for i, n in enumerate(names)}


def short_object(path):
    return path.rsplit("/", 1)[-1] if path else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demangler", default=shutil.which("swift-demangle") or "")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--json")
    ap.add_argument("--unit", default="msg", help="what one step of N is called in the report (msg, handshake)")
    ap.add_argument("--process", default="relayd", help="the profiled process's name in the report")
    ap.add_argument("--match", help="also list the inclusive cost of every function whose name (mangled or "
                                    "demangled) matches this regex (e.g. 'Relay'), wrappers included, no grouping")
    ap.add_argument("--inside", help="a function (exact symbol, e.g. SSL_do_handshake): print its inclusive "
                                     "Ir per unit and what is outside it")
    ap.add_argument("label")
    ap.add_argument("n", type=int)
    ap.add_argument("small")
    ap.add_argument("big")
    a = ap.parse_args()

    ev1, tot1, self1, calls1, counts1 = parse(a.small)
    ev2, tot2, self2, calls2, counts2 = parse(a.big)
    if ev1 != ev2:
        sys.exit("icount_report: the two profiles recorded different events")
    ir = ev1.index("Ir")
    n = a.n
    per_msg = (tot2[ir] - tot1[ir]) / n
    sys_i = ev1.index("sysCount") if "sysCount" in ev1 else None
    sys_per_msg = (tot2[sys_i] - tot1[sys_i]) / n if sys_i is not None else float("nan")
    fixed = tot1[ir] - per_msg * n

    def diff(t2, t1):
        keys = set(t1) | set(t2)
        return {k: ((t2[k][ir] if t2.get(k) else 0) - (t1[k][ir] if t1.get(k) else 0)) / n for k in keys}

    self_diff = diff(fold_recursion(self2), fold_recursion(self1))
    inc1 = inclusive(self1, calls1, ir)
    inc2 = inclusive(self2, calls2, ir)
    inc_diff = {k: (inc2.get(k, 0) - inc1.get(k, 0)) / n for k in set(inc1) | set(inc2)}
    calls_diff = collections.Counter()
    for counts, sign in ((counts2, 1), (counts1, -1)):
        for (obj, fn), c in counts.items():
            calls_diff[(obj, RECURSION_SUFFIX.sub("", fn or ""))] += sign * c / n

    by_object = collections.Counter()
    for (obj, _), v in self_diff.items():
        by_object[short_object(obj)] += v

    top_self = sorted(self_diff.items(), key=lambda kv: -kv[1])[:a.top]
    # Inclusive: drop the cycle-inflated scheduler functions (above the total)
    # and the thread entry points that only say "a thread ran".
    plumbing = re.compile(r"^(start_thread|clone|clone3|_dispatch_|__swift_run_job|jobInvoke|swift_job_run|"
                          r"swift::runJobInEstablishedExecutorContext|swift_task_switch|0x[0-9a-f]+$)")
    # A chain of wrappers (thunk -> closure -> function) has one cost: callers
    # and callees within 1 % of each other are grouped (union-find over the
    # call edges) and each group is shown once, by its most telling name.
    edges = set(calls1) | set(calls2)
    candidates = {k: v for k, v in inc_diff.items()
                  if per_msg * 0.005 <= v <= per_msg * 1.001 and not plumbing.match(k[1] or "")}
    parent = {k: k for k in candidates}

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for caller, callee in edges:
        if caller in candidates and callee in candidates and caller != callee:
            v1, v2 = candidates[caller], candidates[callee]
            if abs(v1 - v2) <= 0.01 * max(v1, v2):
                parent[find(caller)] = find(callee)
    groups = collections.defaultdict(list)
    for k in candidates:
        groups[find(k)].append(k)
    pretty = demangle(sorted({k[1] for k in candidates if k[1]}), a.demangler)
    wrapper = re.compile(r"(thunk|protocol witness|@objc|NSThreadStart|Thread\.main)")

    def telling(k):
        text = pretty.get(k[1], k[1] or "").removeprefix("partial apply for ")
        return (bool(wrapper.search(text)), "closure" in text, -candidates[k], len(text))

    top_inc = sorted(((min(members, key=telling), max(candidates[m] for m in members), len(members))
                      for members in groups.values()), key=lambda t: -t[1])[:a.top]
    pretty.update(demangle(sorted({k[1] for k, _ in top_self if k[1] and k[1] not in pretty}), a.demangler))

    def name(k, width=110):
        s = f"{pretty.get(k[1], k[1])} [{short_object(k[0])}]"
        return s if len(s) <= width else s[:width - 1] + "…"

    def count_of(pattern):
        rx = re.compile(pattern)
        return sum(v for k, v in calls_diff.items() if k[1] and rx.match(k[1]))

    marks = [("LMDB commits (mdb_txn_commit)", r"^mdb_txn_commit$"),
             ("SSL_read calls", r"^SSL_read(_ex)?$"),
             ("SSL_write calls", r"^SSL_write(_ex)?$"),
             ("malloc calls", r"^malloc$"),
             ("swift_retain calls", r"^swift_retain$"),
             ("swift_release calls", r"^swift_release$")]

    unit, proc = a.unit, a.process
    print(f"{a.label}: {proc} {per_msg:,.0f} Ir/{unit}, {sys_per_msg:.3f} syscalls/{unit} "
          f"(N={n:,}: {tot1[ir]:,} Ir, 2N: {tot2[ir]:,} Ir, fixed part {fixed:,.0f} Ir)")
    if a.inside:
        inside = sum(v for k, v in inc_diff.items() if k[1] == a.inside)
        print(f"  inside {a.inside}: {inside:,.0f} Ir/{unit} ({100 * inside / per_msg:.1f} %), "
              f"outside it: {per_msg - inside:,.0f} Ir/{unit}")
    print(f"  calls per {unit}: " + ", ".join(f"{label} {count_of(rx):.4g}" for label, rx in marks))
    print(f"  by library (self Ir/{unit}, share of {proc}'s):")
    for obj, v in by_object.most_common(8):
        print(f"    {v:>10,.0f}  {100 * v / per_msg:5.1f} %  {obj}")
    print(f"  top functions, inclusive (Ir/{unit}, share):")
    for k, v, size in top_inc:
        more = f" (+{size - 1} wrappers)" if size > 1 else ""
        print(f"    {v:>10,.0f}  {100 * v / per_msg:5.1f} %  {name(k)}{more}")
    print(f"  top functions, self (Ir/{unit}, share):")
    for k, v in top_self:
        print(f"    {v:>10,.0f}  {100 * v / per_msg:5.1f} %  {name(k)}")
    matched = []
    if a.match:
        rx = re.compile(a.match)
        keys = sorted({k for k, v in inc_diff.items() if k[1] and v >= per_msg * 0.001
                       and not RECURSION_SUFFIX.search(k[1])})
        pretty.update(demangle(sorted({k[1] for k in keys if k[1] not in pretty}), a.demangler))
        matched = sorted(((k, inc_diff[k]) for k in keys if rx.search(k[1]) or rx.search(pretty.get(k[1], k[1]))),
                         key=lambda kv: -kv[1])[:a.top * 3]
        print(f"  functions matching /{a.match}/, inclusive (Ir/{unit}, share, calls/{unit}):")
        for k, v in matched:
            print(f"    {v:>10,.0f}  {100 * v / per_msg:5.1f} %  {calls_diff.get(k, 0):6.2f}  {name(k, 160)}")

    if a.json:
        with open(a.json, "w") as out:
            json.dump({"label": a.label, "n": n, "ir_per_msg": per_msg, "syscalls_per_msg": sys_per_msg,
                       "ir_small": tot1[ir], "ir_big": tot2[ir],
                       "calls_per_msg": {label: count_of(rx) for label, rx in marks},
                       "by_library": dict(by_object.most_common(12)),
                       "top_inclusive": [[name(k, 400), v] for k, v, _ in top_inc],
                       "top_self": [[name(k, 400), v] for k, v in top_self],
                       "matched_inclusive": [[name(k, 400), v] for k, v in matched]}, out, indent=1)


if __name__ == "__main__":
    main()
