#!/usr/bin/env python3
"""Writes frames.json and invalid.json: the relay v1 test vectors.

This is a second encoder of Protocol/relay-v1.md that shares no code with the
Swift codec, so the Swift tests compare two independent readings of the spec
instead of checking the codec against itself. Valid vectors list their bytes
field by field (so a reader can check each against the spec by eye) and as one
hex string.

Run: python3 Protocol/vectors/generate.py   (rewrites the JSON files next to it)
"""
import json
import os

def u8(v): return v.to_bytes(1, "big")
def u16(v): return v.to_bytes(2, "big")
def u32(v): return v.to_bytes(4, "big")
def u64(v): return v.to_bytes(8, "big")
def s16(s): b = s.encode() if isinstance(s, str) else s; return u16(len(b)) + b

TYPES = {"HELLO": 0x01, "WELCOME": 0x02, "PUB": 0x10, "PUBACK": 0x11, "PUBERR": 0x12,
         "SUB": 0x20, "SUBACK": 0x21, "UNSUB": 0x22, "CREDIT": 0x23, "ACK": 0x24,
         "MSG": 0x30, "PING": 0x40, "PONG": 0x41, "ERR": 0x50, "BYE": 0x51, "ADMIN": 0x60, "ADMINREPLY": 0x61}
START = {"latest": 0, "earliest": 1, "sequence": 2, "time": 3, "last": 4}
ACK_MODE = {"none": 0, "cumulative": 1}
FP = bytes(range(0xA0, 0xC0)).hex()  # 32 bytes

def headers(pairs):
    out = [("header count", u16(len(pairs)))]
    for k, v in pairs:
        out += [("header key", s16(k)), ("header value", s16(v))]
    return out

def extensions(entries):
    out = [("extension count", u16(len(entries)))]
    for e in entries:
        value = bytes.fromhex(e["value"])
        out += [("extension type", u16(e["type"])), ("extension value", u16(len(value)) + value)]
    return out

def body(f):
    """(fields, flags) of a frame described by the JSON dict f."""
    t = f["type"]
    if t == "HELLO":
        return [("min version", u16(f["min_version"])), ("max version", u16(f["max_version"])),
                ("max frame size", u32(f["max_frame_size"])), ("session id", bytes.fromhex(f["session_id"])),
                ("client name", s16(f["client_name"]))] + extensions(f["extensions"]), 0
    if t == "WELCOME":
        return [("version", u16(f["version"])), ("max frame size", u32(f["max_frame_size"])),
                ("max payload", u32(f["max_payload"])), ("max headers", u16(f["max_headers"])),
                ("max header bytes", u32(f["max_header_bytes"])), ("max in flight", u32(f["max_in_flight"])),
                ("max subscriptions", u32(f["max_subscriptions"])), ("dedup window", u64(f["dedup_window"])),
                ("principal", s16(f["principal"])), ("subject", s16(f["subject"])),
                ("fingerprint", bytes.fromhex(f["fingerprint"])), ("spiffe id", s16(f["spiffe_id"]))] \
            + extensions(f["extensions"]), 0
    if t == "PUB":
        return [("publish id", u64(f["publish_id"])), ("topic", s16(f["topic"]))] + headers(f["headers"]) \
            + [("payload", bytes.fromhex(f["payload"]))], 0
    if t == "PUBACK":
        return [("publish id", u64(f["publish_id"])), ("sequence", u64(f["sequence"])),
                ("timestamp", u64(f["timestamp"]))], (1 if f["duplicate"] else 0)
    if t == "PUBERR":
        return [("publish id", u64(f["publish_id"])), ("code", u16(f["code"])), ("message", s16(f["message"]))], 0
    if t == "SUB":
        return [("subscription id", u32(f["subscription_id"])), ("filter", s16(f["filter"])),
                ("start kind", u8(START[f["start"]["kind"]])), ("start value", u64(f["start"]["value"])),
                ("durable name", s16(f["durable_name"])), ("initial credit", u32(f["initial_credit"])),
                ("ack mode", u8(ACK_MODE[f["ack_mode"]]))], 0
    if t == "SUBACK":
        return [("subscription id", u32(f["subscription_id"])), ("code", u16(f["code"])),
                ("first sequence", u64(f["first_sequence"])), ("message", s16(f["message"]))], 0
    if t == "UNSUB":
        return [("subscription id", u32(f["subscription_id"]))], 0
    if t == "CREDIT":
        return [("subscription id", u32(f["subscription_id"])), ("credit", u32(f["credit"]))], 0
    if t == "ACK":
        return [("subscription id", u32(f["subscription_id"])), ("sequence", u64(f["sequence"]))], 0
    if t == "MSG":
        return [("subscription id", u32(f["subscription_id"])), ("sequence", u64(f["sequence"])),
                ("timestamp", u64(f["timestamp"])), ("topic", s16(f["topic"])),
                ("publisher principal", s16(f["publisher_principal"])),
                ("publisher fingerprint", bytes.fromhex(f["publisher_fingerprint"]))] + headers(f["headers"]) \
            + [("payload", bytes.fromhex(f["payload"]))], (1 if f["replayed"] else 0)
    if t in ("PING", "PONG"):
        return [("token", u64(f["token"]))], 0
    if t == "ERR":
        return [("code", u16(f["code"])), ("subscription id", u32(f["subscription_id"])),
                ("message", s16(f["message"]))], 0
    if t == "BYE":
        return [("code", u16(f["code"])), ("message", s16(f["message"]))], 0
    if t == "ADMIN":
        return [("request id", u32(f["request_id"])), ("operation", s16(f["operation"])),
                ("body", bytes.fromhex(f["body"]))], 0
    if t == "ADMINREPLY":
        return [("request id", u32(f["request_id"])), ("code", u16(f["code"])), ("message", s16(f["message"])),
                ("body", bytes.fromhex(f["body"]))], (1 if f["more"] else 0)
    raise ValueError(t)

def raw(type_byte, flags, payload, length=None):
    n = 2 + len(payload) if length is None else length
    return u32(n) + u8(type_byte) + u8(flags) + payload

def encode(f):
    fields, flags = body(f)
    return raw(TYPES[f["type"]], flags, b"".join(b for _, b in fields))

# The receiver's limits every vector assumes unless it says otherwise: the
# defaults a reference broker announces in WELCOME (a client's frame limit is
# the one it announced in HELLO, 1114112 by default). A broker in state
# "fresh" applies min(max_frame_size, 8192) until HELLO (spec section 2).
DEFAULT_LIMITS = {"max_frame_size": 1114112, "max_payload": 1048576, "max_headers": 64, "max_header_bytes": 16384}

def limits(**overrides):
    out = dict(DEFAULT_LIMITS)
    out.update(overrides)
    return out

def valid(name, sender, f):
    fields, flags = body(f)
    payload = b"".join(b for _, b in fields)
    head = [("length", u32(2 + len(payload))), ("type", u8(TYPES[f["type"]])), ("flags", u8(flags))]
    all_fields = [[label, b.hex()] for label, b in head + fields]
    # HELLO and WELCOME are the first frame their receiver reads; every other
    # frame is read after them.
    state = "fresh" if f["type"] in ("HELLO", "WELCOME") else "ready"
    return {"name": name, "sender": sender, "state": state, "limits": limits(), "hex": "".join(h for _, h in all_fields),
            "fields": all_fields, "frame": f}

SID = "000102030405060708090a0b0c0d0e0f"
HELLO = {"type": "HELLO", "min_version": 1, "max_version": 1, "max_frame_size": 1114112,
         "session_id": SID, "client_name": "relay-pub/0.1", "extensions": []}
WELCOME = {"type": "WELCOME", "version": 1, "max_frame_size": 1114112, "max_payload": 1048576,
           "max_headers": 64, "max_header_bytes": 16384, "max_in_flight": 1024, "max_subscriptions": 256,
           "dedup_window": 120_000_000_000, "principal": "orders-api",
           "subject": "CN=orders-api,OU=payments,O=Example", "fingerprint": FP,
           "spiffe_id": "spiffe://example.org/ns/prod/sa/orders-api", "extensions": []}

def pub(topic, hdrs=(), payload="", pid=1):
    return {"type": "PUB", "publish_id": pid, "topic": topic, "headers": [list(h) for h in hdrs], "payload": payload}

def sub(filt, kind="latest", value=0, durable="", credit=100, ack="none", sid=7):
    return {"type": "SUB", "subscription_id": sid, "filter": filt, "start": {"kind": kind, "value": value},
            "durable_name": durable, "initial_credit": credit, "ack_mode": ack}

VALID = [
    valid("hello", "client", HELLO),
    valid("hello with a version range, no session, no name, two extensions", "client",
          dict(HELLO, min_version=1, max_version=3, max_frame_size=1024, session_id="00" * 16, client_name="",
               extensions=[{"type": 0xF001, "value": "01"}, {"type": 7, "value": ""}])),
    valid("welcome", "broker", WELCOME),
    valid("welcome without SPIFFE id, dedup off, one extension", "broker",
          dict(WELCOME, spiffe_id="", dedup_window=0, principal="", subject="CN=x\\,y",
               extensions=[{"type": 0xF000, "value": "cafe"}])),
    valid("pub, 128-byte payload", "client", pub("orders.eu.created", payload="ab" * 128, pid=42)),
    valid("pub with headers", "client",
          pub("orders.created", [("content-type", "application/json"), ("trace.id", "4bf92f35"),
                                 ("trace.id", "repeated keys keep their order"), ("x", "")], "7b7d", pid=2)),
    valid("pub with empty payload and non-ASCII header value", "client",
          pub("a", [("note", "caf\u00e9 \u2603 \U0001F680")], "", pid=0xFFFFFFFFFFFFFFFF)),
    valid("pub to a 32-token, 255-byte-limit topic", "client", pub(".".join(["t"] * 32), payload="00")),
    valid("puback", "broker", {"type": "PUBACK", "publish_id": 42, "sequence": 1001,
                               "timestamp": 1764383000123456789, "duplicate": False}),
    valid("puback duplicate", "broker", {"type": "PUBACK", "publish_id": 42, "sequence": 1001,
                                         "timestamp": 1764383000123456789, "duplicate": True}),
    valid("puberr", "broker", {"type": "PUBERR", "publish_id": 3, "code": 0x0102,
                               "message": "not allowed to publish to orders.eu"}),
    valid("puberr with a code this version does not define", "broker",
          {"type": "PUBERR", "publish_id": 4, "code": 0x0777, "message": ""}),
    valid("sub latest", "client", sub("orders.>")),
    valid("sub earliest, durable, cumulative acks", "client",
          sub("orders.*.created", "earliest", 0, "billing-worker", 1000, "cumulative", 8)),
    valid("sub from sequence", "client", sub("a.b", "sequence", 1234, sid=9)),
    valid("sub from time", "client", sub(">", "time", 1764383000000000000, credit=0, sid=10)),
    valid("sub last N", "client", sub("_relay.audit", "last", 10, sid=0xFFFFFFFF)),
    valid("suback ok", "broker", {"type": "SUBACK", "subscription_id": 7, "code": 0,
                                  "first_sequence": 1002, "message": ""}),
    valid("suback refused", "broker", {"type": "SUBACK", "subscription_id": 7, "code": 0x0101,
                                       "first_sequence": 0, "message": "filter \"a.>.b\": '>' must be last"}),
    valid("unsub", "client", {"type": "UNSUB", "subscription_id": 7}),
    valid("credit", "client", {"type": "CREDIT", "subscription_id": 7, "credit": 500}),
    valid("ack", "client", {"type": "ACK", "subscription_id": 8, "sequence": 1001}),
    valid("msg", "broker", {"type": "MSG", "subscription_id": 7, "sequence": 1001, "timestamp": 1764383000123456789,
                            "topic": "orders.eu.created", "publisher_principal": "orders-api",
                            "publisher_fingerprint": FP, "headers": [["content-type", "application/json"]],
                            "payload": "7b226964223a317d", "replayed": False}),
    valid("msg replayed, no headers, empty payload", "broker",
          {"type": "MSG", "subscription_id": 8, "sequence": 1, "timestamp": 0, "topic": "a",
           "publisher_principal": "spiffe://example.org/ns/prod/sa/x", "publisher_fingerprint": "00" * 32,
           "headers": [], "payload": "", "replayed": True}),
    valid("ping from the client", "client", {"type": "PING", "token": 0x0123456789ABCDEF}),
    valid("pong from the client", "client", {"type": "PONG", "token": 77}),
    valid("ping from the broker", "broker", {"type": "PING", "token": 1}),
    valid("pong from the broker", "broker", {"type": "PONG", "token": 0x0123456789ABCDEF}),
    valid("err about the connection", "broker",
          {"type": "ERR", "code": 0x0001, "subscription_id": 0, "message": "PUB frame ends inside topic"}),
    valid("err ending a subscription", "broker",
          {"type": "ERR", "code": 0x010D, "subscription_id": 7, "message": "permission withdrawn by reload"}),
    valid("bye from the client", "client", {"type": "BYE", "code": 0, "message": ""}),
    valid("bye from the broker", "broker", {"type": "BYE", "code": 0x000B, "message": "shutting down"}),
    valid("admin status, no arguments", "client", {"type": "ADMIN", "request_id": 1, "operation": "status", "body": ""}),
    valid("admin purge with a JSON argument object", "client",
          {"type": "ADMIN", "request_id": 2, "operation": "purge",
           "body": b'{"confirm":true,"filter":"orders.>"}'.hex()}),
    valid("adminreply with a JSON result", "broker",
          {"type": "ADMINREPLY", "request_id": 2, "code": 0, "message": "",
           "body": b'{"messages":3,"operation":"purge","result":"purged"}'.hex(), "more": False}),
    valid("adminreply refused, not_authorized", "broker",
          {"type": "ADMINREPLY", "request_id": 1, "code": 0x0102, "message": "status needs admin read access",
           "body": "", "more": False}),
    valid("adminreply backup chunk (more)", "broker",
          {"type": "ADMINREPLY", "request_id": 3, "code": 0, "message": "", "body": "deadbeef", "more": True}),
]

# Extension frames (0x80-0xFF) are skipped whole: they decode to nothing.
SKIPPED = [
    {"name": "extension frame 0x80 with a body and flags", "sender": "client", "state": "ready", "limits": limits(),
     "hex": raw(0x80, 0xFF, b"\x01\x02\x03").hex()},
    {"name": "extension frame 0xFF, empty", "sender": "broker", "state": "ready", "limits": limits(),
     "hex": raw(0xFF, 0, b"").hex()},
]

def bad(name, receiver, data, error, state="ready", stage="decode", **overrides):
    return {"name": name, "receiver": receiver, "state": state, "limits": limits(**overrides), "stage": stage,
            "hex": data.hex(), "error": error}

def pub_raw(topic_bytes, hdr_bytes=u16(0), payload=b"", flags=0):
    return raw(0x10, flags, u64(1) + u16(len(topic_bytes)) + topic_bytes + hdr_bytes + payload)

def hello_raw(min_v=1, max_v=1, max_frame=1114112, name=b"c", ext=u16(0)):
    return raw(0x01, 0, u16(min_v) + u16(max_v) + u32(max_frame) + bytes(16) + s16(name) + ext)

def sub_raw(sid=7, filt=b"a", kind=0, value=0, durable=b"", credit=1, ack=0):
    return raw(0x20, 0, u32(sid) + s16(filt) + u8(kind) + u64(value) + s16(durable) + u32(credit) + u8(ack))

def hdrs_raw(pairs):
    return u16(len(pairs)) + b"".join(s16(k) + s16(v) for k, v in pairs)

ping = raw(0x40, 0, u64(1))
full_pub = encode(pub("orders.created", payload="00ff"))
INVALID = [
    # Framing.
    bad("length 0", "broker", u32(0) + b"\x40\x00", "protocol_violation"),
    bad("length 1", "broker", u32(1) + b"\x40", "protocol_violation"),
    bad("length one above the default limit, body never sent", "broker",
        u32(1114113) + b"\x10\x00", "frame_too_large"),
    bad("length 0xFFFFFFFF, only the length field sent", "broker", u32(0xFFFFFFFF), "frame_too_large"),
    bad("length above a smaller announced limit", "client", u32(1025) + b"\x30\x00", "frame_too_large",
        max_frame_size=1024),
    bad("frame above 8192 bytes before HELLO", "broker", u32(8193) + b"\x01\x00", "frame_too_large", state="fresh"),
    bad("connection closed inside a frame (truncated PUB)", "broker", full_pub[:-3], "protocol_violation",
        stage="eof"),
    bad("connection closed inside the length field", "broker", b"\x00\x00", "protocol_violation", stage="eof"),
    # Types, direction, flags, order.
    bad("unknown core frame type 0x05", "broker", raw(0x05, 0, b""), "unknown_frame_type"),
    bad("unknown core frame type 0x7F", "client", raw(0x7F, 0, b"\x00"), "unknown_frame_type"),
    bad("unknown core frame type 0x00", "broker", raw(0x00, 0, b""), "unknown_frame_type"),
    bad("client sends MSG", "broker", encode({"type": "MSG", "subscription_id": 1, "sequence": 1, "timestamp": 0,
        "topic": "a", "publisher_principal": "forged", "publisher_fingerprint": FP, "headers": [],
        "payload": "", "replayed": False}), "protocol_violation"),
    bad("client sends WELCOME", "broker", encode(WELCOME), "protocol_violation"),
    bad("broker sends PUB", "client", full_pub, "protocol_violation"),
    bad("reserved flag bit on PUB", "broker", pub_raw(b"a", flags=0x01), "protocol_violation"),
    bad("undefined flag bit 1 on PUBACK", "client", raw(0x11, 0x02, u64(1) + u64(2) + u64(3)), "protocol_violation"),
    bad("reserved flag bit 7 on PING", "broker", raw(0x40, 0x80, u64(1)), "protocol_violation"),
    bad("first client frame is not HELLO", "broker", ping, "hello_required", state="fresh"),
    bad("second HELLO", "broker", hello_raw() + hello_raw(), "protocol_violation", state="fresh"),
    bad("first broker frame is PUBACK", "client", raw(0x11, 0, u64(1) + u64(2) + u64(3)), "protocol_violation",
        state="fresh"),
    bad("second WELCOME", "client", encode(WELCOME) + encode(WELCOME), "protocol_violation", state="fresh"),
    # Check order (spec section 2): type, direction, flags, then session order, then body.
    bad("PUB with invalid UTF-8 before HELLO: order is checked before the body", "broker",
        pub_raw(b"\xff"), "hello_required", state="fresh"),
    bad("unknown type before HELLO: the type is checked before the order", "broker", raw(0x06, 0, b""),
        "unknown_frame_type", state="fresh"),
    bad("client sends MSG before HELLO: the direction is checked before the order", "broker",
        raw(0x30, 0, b""), "protocol_violation", state="fresh"),
    bad("second HELLO with a malformed body", "broker", hello_raw() + raw(0x01, 0, b"\x00"),
        "protocol_violation", state="fresh"),
    # Field structure.
    bad("PUBACK body too short", "client", raw(0x11, 0, u64(1) + u16(2)), "protocol_violation"),
    bad("PING with a trailing byte", "broker", raw(0x40, 0, u64(1) + b"\x00"), "protocol_violation"),
    bad("BYE with no body", "broker", raw(0x51, 0, b""), "protocol_violation"),
    bad("ADMIN request id 0", "broker", raw(0x60, 0, u32(0) + s16("status")), "protocol_violation"),
    bad("ADMIN sent by the broker", "client", raw(0x60, 0, u32(1) + s16("status")), "protocol_violation"),
    bad("ADMINREPLY sent by a client", "broker", raw(0x61, 0, u32(1) + u16(0) + s16("")), "protocol_violation"),
    bad("undefined flag bit 1 on ADMINREPLY", "client", raw(0x61, 0x02, u32(1) + u16(0) + s16("")), "protocol_violation"),
    bad("topic length runs past the frame", "broker", raw(0x10, 0, u64(1) + u16(50) + b"abc"), "protocol_violation"),
    bad("header count larger than the frame holds", "broker", pub_raw(b"a", u16(1000)), "protocol_violation"),
    bad("header value runs past the frame", "broker", pub_raw(b"a", u16(1) + s16(b"k") + u16(9) + b"v"),
        "protocol_violation"),
    bad("HELLO min version above max version", "broker", hello_raw(2, 1), "protocol_violation", state="fresh"),
    bad("HELLO min version 0", "broker", hello_raw(0, 1), "protocol_violation", state="fresh"),
    bad("HELLO max frame size below 1024", "broker", hello_raw(max_frame=1023), "protocol_violation", state="fresh"),
    bad("HELLO max frame size above 64 MiB", "broker", hello_raw(max_frame=67108865), "protocol_violation",
        state="fresh"),
    bad("WELCOME max frame size below 1024", "client", encode(dict(WELCOME, max_frame_size=1023)),
        "protocol_violation", state="fresh"),
    bad("WELCOME max frame size above 64 MiB", "client", encode(dict(WELCOME, max_frame_size=67108865)),
        "protocol_violation", state="fresh"),
    bad("HELLO extension type repeated", "broker",
        hello_raw(ext=u16(2) + u16(9) + u16(0) + u16(9) + u16(1) + b"\x00"), "protocol_violation", state="fresh"),
    bad("HELLO with 33 extensions", "broker",
        hello_raw(ext=u16(33) + b"".join(u16(i) + u16(0) for i in range(33))), "protocol_violation", state="fresh"),
    bad("HELLO extension value runs past the frame", "broker", hello_raw(ext=u16(1) + u16(1) + u16(5) + b"ab"),
        "protocol_violation", state="fresh"),
    bad("HELLO client name above 255 bytes", "broker", hello_raw(name=b"n" * 256), "protocol_violation",
        state="fresh"),
    bad("SUB subscription id 0", "broker", sub_raw(sid=0), "protocol_violation"),
    bad("SUB undefined start kind", "broker", sub_raw(kind=5), "protocol_violation"),
    bad("SUB latest with a value", "broker", sub_raw(kind=0, value=5), "protocol_violation"),
    bad("SUB earliest with a value", "broker", sub_raw(kind=1, value=1), "protocol_violation"),
    bad("SUB undefined ack mode", "broker", sub_raw(ack=2), "protocol_violation"),
    # UTF-8.
    bad("invalid UTF-8 in a PUB topic", "broker", pub_raw(b"a\xc3\x28"), "invalid_utf8"),
    bad("overlong UTF-8 in a PUB topic", "broker", pub_raw(b"\xc0\xaf"), "invalid_utf8"),
    bad("UTF-16 surrogate in a header value", "broker", pub_raw(b"a", hdrs_raw([(b"k", b"\xed\xa0\x80")])),
        "invalid_utf8"),
    bad("code point above U+10FFFF in a header key", "broker", pub_raw(b"a", hdrs_raw([(b"\xf4\x90\x80\x80", b"v")])),
        "invalid_utf8"),
    bad("truncated UTF-8 sequence in a SUB filter", "broker", sub_raw(filt=b"a.\xe2\x82"), "invalid_utf8"),
    bad("invalid UTF-8 in the HELLO client name", "broker", hello_raw(name=b"\xff"), "invalid_utf8", state="fresh"),
    bad("invalid UTF-8 in an ERR message", "client", raw(0x50, 0, u16(1) + u32(0) + s16(b"\x80")), "invalid_utf8"),
    # Operation level: decoded fine, refused by validation (PUBERR / SUBACK), connection stays open.
    bad("empty PUB topic", "broker", pub_raw(b""), "invalid_topic", stage="operation"),
    bad("PUB topic with an empty token", "broker", pub_raw(b"a..b"), "invalid_topic", stage="operation"),
    bad("PUB topic with a trailing dot", "broker", pub_raw(b"a.b."), "invalid_topic", stage="operation"),
    bad("PUB topic with a space", "broker", pub_raw(b"a b"), "invalid_topic", stage="operation"),
    bad("PUB topic with valid non-ASCII UTF-8", "broker", pub_raw("caf\u00e9".encode()), "invalid_topic",
        stage="operation"),
    bad("PUB topic of 256 bytes", "broker", pub_raw(b"a" * 256), "invalid_topic", stage="operation"),
    bad("PUB topic of 33 tokens", "broker", pub_raw(b".".join([b"t"] * 33)), "invalid_topic", stage="operation"),
    bad("filter wildcard * in a PUB topic", "broker", pub_raw(b"orders.*"), "invalid_topic", stage="operation"),
    bad("filter wildcard > in a PUB topic", "broker", pub_raw(b"orders.>"), "invalid_topic", stage="operation"),
    bad("reserved PUB topic", "broker", pub_raw(b"_relay.audit"), "reserved_topic", stage="operation"),
    bad("payload above max_payload", "broker", pub_raw(b"a", payload=b"x" * 17), "payload_too_large",
        stage="operation", max_payload=16),
    bad("65 headers", "broker", pub_raw(b"a", hdrs_raw([(b"k", b"")] * 65)), "invalid_headers", stage="operation"),
    bad("header key with a space", "broker", pub_raw(b"a", hdrs_raw([(b"bad key", b"v")])), "invalid_headers",
        stage="operation"),
    bad("empty header key", "broker", pub_raw(b"a", hdrs_raw([(b"", b"v")])), "invalid_headers", stage="operation"),
    bad("header key of 256 bytes", "broker", pub_raw(b"a", hdrs_raw([(b"k" * 256, b"")])), "invalid_headers",
        stage="operation"),
    bad("headers above 16 KiB", "broker", pub_raw(b"a", hdrs_raw([(b"k", b"v" * 16384)])), "invalid_headers",
        stage="operation"),
    bad("SUB filter with > not last", "broker", sub_raw(filt=b"a.>.b"), "invalid_filter", stage="operation"),
    bad("SUB filter with a partial wildcard", "broker", sub_raw(filt=b"a*"), "invalid_filter", stage="operation"),
    bad("SUB empty filter", "broker", sub_raw(filt=b""), "invalid_filter", stage="operation"),
    bad("SUB from sequence 0", "broker", sub_raw(kind=2, value=0), "invalid_start_position", stage="operation"),
    bad("SUB last 0", "broker", sub_raw(kind=4, value=0), "invalid_start_position", stage="operation"),
    bad("SUB durable name with a dot", "broker", sub_raw(durable=b"a.b"), "invalid_start_position",
        stage="operation"),
    bad("SUB durable name of 256 bytes", "broker", sub_raw(durable=b"d" * 256), "invalid_start_position",
        stage="operation"),
]

NOTE = ("hex: the whole input. Every vector states the receiver state it assumes: `state` fresh = the receiver "
        "has not yet read HELLO (broker) or WELCOME (client), ready = it has; `limits` = the receiver's limits "
        "(max_frame_size: the broker's WELCOME value or the client's HELLO value; a fresh broker applies "
        "min(max_frame_size, 8192)). Valid vectors: decode to `frame` (receiver = the other side of `sender`) and "
        "re-encode to `hex`. Invalid vectors: `stage` decode = the decoder fails with `error`; eof = the input "
        "ends and the connection closes; operation = the frame decodes, then the operation checks of the spec "
        "refuse it with `error` under `limits`.")

def write(name, doc):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=True)
        f.write("\n")

write("frames.json", {"protocol": "relay v1", "spec": "Protocol/relay-v1.md", "note": NOTE,
                      "valid": VALID, "skipped": SKIPPED})
write("invalid.json", {"protocol": "relay v1", "spec": "Protocol/relay-v1.md", "note": NOTE, "invalid": INVALID})
