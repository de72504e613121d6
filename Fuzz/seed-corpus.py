#!/usr/bin/env python3
"""Writes fuzz seeds from Protocol/vectors: one file per vector and per
receiver configuration. The first byte of a seed is the fuzz target's
configuration (bit 0: receiver is the client; bit 1: expect HELLO/WELCOME
first; bits 2-4: chunk size index; bit 5: read through FrameAccumulator),
the rest the byte stream.

Usage: seed-corpus.py VECTORS_DIR OUT_DIR
"""
import hashlib
import json
import os
import sys

vectors, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
frames = json.load(open(os.path.join(vectors, "frames.json")))
invalid = json.load(open(os.path.join(vectors, "invalid.json")))["invalid"]

def seed(config, data):
    blob = bytes([config]) + data
    name = hashlib.sha1(blob).hexdigest()
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)

for v in frames["valid"] + frames["skipped"]:
    client_receives = v["sender"] == "broker"
    handshake = v.get("frame", {}).get("type") in ("HELLO", "WELCOME")
    seed((1 if client_receives else 0) | (2 if handshake else 0) | (6 << 2), bytes.fromhex(v["hex"]))
for v in invalid:
    config = (1 if v["receiver"] == "client" else 0) | (2 if v["state"] == "fresh" else 0) | (6 << 2)
    seed(config, bytes.fromhex(v["hex"]))
# A whole conversation per side, fed one byte at a time.
client_stream = b"".join(bytes.fromhex(v["hex"]) for v in frames["valid"] if v["sender"] == "client"
                         and v["frame"]["type"] != "HELLO")
seed(0, client_stream)
broker_stream = b"".join(bytes.fromhex(v["hex"]) for v in frames["valid"] if v["sender"] == "broker"
                         and v["frame"]["type"] != "WELCOME")
seed(1, broker_stream)
# The same streams through FrameAccumulator (bit 5), in 3-byte and 64-byte reads.
seed(0x20 | (2 << 2), client_stream)
seed(0x21 | (4 << 2), broker_stream)
