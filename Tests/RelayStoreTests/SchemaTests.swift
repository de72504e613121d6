import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// The record codec and the byte-level filter matcher, without LMDB.
@Suite struct SchemaTests {
    func encode(_ message: NewMessage, timestamp: UInt64 = 42) throws -> [UInt8] {
        let size = try RecordCodec.size(of: message)
        var bytes = [UInt8](repeating: 0xEE, count: size)
        bytes.withUnsafeMutableBytes { RecordCodec.encode(message, timestamp: timestamp, into: $0) }
        return bytes
    }

    @Test func recordRoundTripsThroughTheDecoder() throws {
        let original = try message("a.b", "payload", headers: try headerBlock([("k", "v")]))
        let bytes = try encode(original, timestamp: 1_700_000_000_000_000_000)
        var decoder = RecordDecoder(expectedBytes: 64)
        try bytes.withBytes { (raw) throws(StoreError) in try decoder.decode(raw, sequence: 7) }
        let decoded = try #require(decoder.finish().first)
        #expect(decoded.sequence == 7)
        #expect(decoded.timestamp == 1_700_000_000_000_000_000)
        #expect(decoded.topic == original.topic)
        #expect(decoded.publisher == original.publisher)
        #expect(decoded.headers == original.headers)
        #expect(decoded.text == "payload")
    }

    @Test func fingerprintIsStoredAsItsRawBytes() throws {
        let bytes = try encode(try message("t", "x"))
        #expect(bytes[1] == RecordCodec.flagRawFingerprint)
        let layout = try bytes.withBytes { (raw) throws(StoreError) in try RecordCodec.layout(of: raw, sequence: 1) }
        #expect(Array(bytes[layout.fingerprint]) == testDigest.bytes)
    }

    @Test("records that older writers stored with a text fingerprint still decode: hex to its value, anything else to zero")
    func textFingerprintsOfOldRecordsDecode() throws {
        let hex = String(repeating: "a1", count: 32)
        var decoder = RecordDecoder(expectedBytes: 64)
        for (sequence, fingerprint) in [(UInt64(1), hex.uppercased()), (2, "not-a-digest"), (3, hex)] {
            let record = OldFormatRecord.encode(timestamp: 5, topic: "t", principal: "p", fingerprint: fingerprint, payload: "x")
            #expect(record[1] == (fingerprint == hex ? RecordCodec.flagRawFingerprint : 0))
            try record.withBytes { (raw) throws(StoreError) in try decoder.decode(raw, sequence: sequence) }
        }
        let expected = try #require(CertificateFingerprint(hex: hex))
        #expect(decoder.finish().map(\.publisher.fingerprint) == [expected, .zero, expected])
    }

    @Test func everyTruncationIsRejectedNotReadPastTheEnd() throws {
        let bytes = try encode(try message("orders.eu", "", headers: try headerBlock([("name", "value")])))
        // Every prefix that cuts into the envelope must fail cleanly (the payload may be empty).
        let payloadStart = bytes.count
        for length in 0..<payloadStart {
            let prefix = Array(bytes[..<length])
            #expect(throws: StoreError.self) {
                _ = try prefix.withBytes { (raw) throws(StoreError) in try RecordCodec.layout(of: raw, sequence: 1) }
            }
        }
    }

    @Test func unknownRecordVersionIsReported() throws {
        var bytes = try encode(try message("t", "x"))
        bytes[0] = 9
        #expect {
            _ = try bytes.withBytes { (raw) throws(StoreError) in try RecordCodec.layout(of: raw, sequence: 3) }
        } throws: { error in
            guard case .invalidRecord(3, let reason) = error as? StoreError else { return false }
            return reason.contains("version 9")
        }
    }

    @Test func cursorKeysDoNotCollideAcrossPrincipalAndName() throws {
        #expect(try Schema.legacyCursorKey(principal: "ab", name: "c") != Schema.legacyCursorKey(principal: "a", name: "bc"))
        #expect(throws: StoreError.self) { try Schema.legacyCursorKey(principal: "p", name: "") }
        // Owned and legacy keys live apart (first byte), whatever the principal.
        let owned = try Schema.cursorKey(owner: testOwner(0), name: "c")
        #expect(owned.first == Schema.ownedCursorPrefix)
        #expect(try Schema.legacyCursorKey(principal: String(repeating: "x", count: 300), name: "c").first == Schema.legacyCursorPrefix)
        #expect(throws: StoreError.self) { try Schema.cursorKey(owner: testOwner(0), name: "") }
    }
}
