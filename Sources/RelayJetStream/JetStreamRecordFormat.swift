import RelayCore
import RelayStore

/// Which record and `Nats-Msg-Id` an edge writes (`[storage.jetstream]
/// record_format`). Every edge reads both records; the id only has to be the
/// same on every edge a publisher may retry through (docs/cluster.md,
/// "Record formats and rolling upgrades").
public enum JetStreamRecordFormat: String, Sendable, Equatable {
    /// Records with the topic inside, ids in hex (`<fingerprint>-<session hi>-<session lo>-<publish id>`):
    /// what edges before record format 2 write and read.
    case v1
    /// Records without the topic (the subject carries it) and compact ids
    /// (``JetStreamRecord/compactMessageID(_:)``): about 60 bytes less per
    /// message on the client connection, both routes and the tail.
    case v2
}

extension JetStreamRecord {
    /// `Nats-Msg-Id` for a producer key in the given format.
    static func messageID(_ key: ProducerKey, format: JetStreamRecordFormat) -> String {
        format == .v1 ? messageID(key) : compactMessageID(key)
    }

    /// `r` then base64url (no padding) of the fingerprint (32 bytes), the
    /// session id (16) and the publish id (big-endian, leading zero bytes
    /// dropped; none for 0): 65 to 76 characters, against 70 to 118 in hex.
    /// Collision-free: the fingerprint and session id have fixed lengths, so
    /// the bytes after them are the publish id alone, its minimal encoding is
    /// one-to-one, and so is base64. The `r` keeps it apart from the hex ids
    /// of format 1 and the unkeyed `<uuid>-<counter>` ids (neither starts with `r`).
    static func compactMessageID(_ key: ProducerKey) -> String {
        let fingerprint = key.publisher
        var bytes = [UInt8]()
        bytes.reserveCapacity(56)
        for word in [fingerprint.w0, fingerprint.w1, fingerprint.w2, fingerprint.w3, key.sessionHigh, key.sessionLow] {
            appendBigEndian(word, byteCount: 8, to: &bytes)
        }
        appendBigEndian(key.publishID, byteCount: (64 - key.publishID.leadingZeroBitCount + 7) / 8, to: &bytes)
        return base64URL(bytes, prefix: UInt8(ascii: "r"))
    }

    private static func appendBigEndian(_ value: UInt64, byteCount: Int, to bytes: inout [UInt8]) {
        for index in stride(from: byteCount - 1, through: 0, by: -1) {
            bytes.append(UInt8(truncatingIfNeeded: value >> (UInt64(index) * 8)))
        }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static func base64URL(_ bytes: [UInt8], prefix: UInt8) -> String {
        var out = [UInt8]()
        out.reserveCapacity(1 + (bytes.count * 4 + 2) / 3)
        out.append(prefix)
        var index = 0
        while index < bytes.count {
            let chunk = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if chunk > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if chunk > 2 { group |= UInt32(bytes[index + 2]) }
            for position in 0...chunk {  // chunk + 1 characters carry chunk bytes
                out.append(alphabet[Int((group >> UInt32(18 - 6 * position)) & 0x3F)])
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
