#!/usr/bin/env python3
"""Writes policy-template fuzz seeds in the target's key=value line format
(Fuzz/PolicyTemplate/FuzzPolicyTemplate.swift): the [[acl.rule]] tables of
config/relay.toml and of the ```toml blocks in docs/*.md, each paired with
identities whose attributes hold clean values and values with '.', '*',
'>', whitespace, control characters, non-ASCII and nothing at all.

Usage: seed-policy.py REPO_ROOT OUT_DIR
"""
import glob
import hashlib
import os
import re
import sys
import tomllib

root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

def seed(text):
    data = text.encode()
    with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def as_list(value):
    return value if isinstance(value, list) else [value]

policies = []
texts = [open(os.path.join(root, "config/relay.toml")).read()]
for doc in sorted(glob.glob(os.path.join(root, "docs/*.md"))):
    texts += re.findall(r"```toml\n(.*?)```", open(doc).read(), re.S)
for text in texts:
    try:
        acl = tomllib.loads(text).get("acl", {})
    except tomllib.TOMLDecodeError:
        continue
    lines = []
    if "principal" in acl:
        lines.append("principal=" + acl["principal"])
    for rule in acl.get("rule", []):
        lines.append("rule=" + rule.get("name", ""))
        for key, values in rule.get("match", {}).items():
            lines += ["match.%s=%s" % (key, v) for v in as_list(values)]
        for key in ("publish", "subscribe", "deny_publish", "deny_subscribe"):
            lines += ["%s=%s" % (key, v) for v in as_list(rule.get(key, []))]
    if lines:
        policies.append("\n".join(lines))

bad = ["a.b", "*", ">", "a*", "x>", "a b", " ", "\t", "a\x01", "\x7f", "\r", "caf\u00e9", "", "..", "a.>", "*.*"]
identities = [
    "subject.CN=api\nsubject.OU=orders\nsubject.O=Example\nsan.dns=api.example",
    "subject.CN=billing-service\nsubject.OU=billing",
    "subject.CN=operator\nsubject.OU=operators",
    "spiffe=spiffe://relay.example/payments/api\nsan.dns=payments",
    "spiffe=spiffe://relay.example/pay.ments/a\nspiffe=spiffe://relay.example/b",
    "subject.DC=a\nsubject.DC=b\nsubject.DC=c\nissuer.O=CA\nissuer.CN=root\nsan.email=ops",
    "subject.2.5.4.3=oid\nsubject.UID=u1\nsubject.serialNumber=42",
]
for value in bad:
    identities.append("subject.CN=%s\nsubject.OU=%s\nsan.dns=%s\nsan.email=%s\nissuer.O=%s" % ((value,) * 5))
    identities.append("subject.CN=ok\nsubject.CN=%s\nsan.dns=%s\nspiffe=spiffe://relay.example/%s/x" % ((value,) * 3))
for identity in identities:
    seed(identity + "\n")
    for policy in policies:
        seed(policy + "\n" + identity + "\n")
