#!/usr/bin/env python3
"""Writes config-parser fuzz seeds: config/relay.toml, every ```toml block
of README.md and docs/*.md, and the triple-quoted TOML texts of
Tests/RelayBrokerTests/ConfigTests.swift (with Swift interpolations dropped).
A [tls] section is prepended where one is missing, so the seeds get past the
first check and into the sections after it.

Usage: seed-config.py REPO_ROOT OUT_DIR
"""
import glob
import hashlib
import os
import re
import sys

root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
TLS = '[tls]\ncertificate = "server.pem"\nprivate_key = "server.key"\nclient_ca = ["ca.pem"]\n'

def seed(text):
    for blob in {text, text if "[tls]" in text else TLS + text}:
        data = blob.encode()
        with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)

seed(open(os.path.join(root, "config/relay.toml")).read())
for doc in [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs/*.md"))):
    if os.path.exists(doc):
        for block in re.findall(r"```toml\n(.*?)```", open(doc).read(), re.S):
            seed(block)
tests = os.path.join(root, "Tests/RelayBrokerTests/ConfigTests.swift")
if os.path.exists(tests):
    for literal in re.findall(r'"""\n(.*?)"""', open(tests).read(), re.S):
        text = re.sub(r"\\\(.*?\)", "", "\n".join(line.strip() for line in literal.splitlines()))
        if "=" in text:
            seed(text + "\n")
