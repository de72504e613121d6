import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// The record codec and the byte-level filter matcher, without LMDB.
@Suite struct SchemaTests {
    func encode(_ message: NewMessage, timestamp: UInt64 = 42) throws -> [UInt8] {
        let publisher = try RecordCodec.EncodedPublisher(message.publisher)
        let size = try RecordCodec.size(of: message, publisher: publisher)
        var bytes = [UInt8](repeating: 0xEE, count: size)
        bytes.withUnsafeMutableBytes { RecordCodec.encode(message, publisher: publisher, timestamp: timestamp, into: $0) }
        return bytes
    }

    @Test func recordRoundTripsThroughTheDecoder() throws {
        let original = try message("a.b", "payload", headers: [MessageHeader(name: "k", value: "v")])
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

    @Test func hexFingerprintIsStoredAsRawBytes() throws {
        let hex = try encode(try message("t", "x"))
        let text = try encode(try message("t", "x", publisher: PublisherStamp(principal: testPublisher.principal, fingerprint: "ZZ")))
        #expect(hex[1] == RecordCodec.flagRawFingerprint)
        #expect(text[1] == 0)
        #expect(hex.count == text.count - 2 + 32)
    }

    @Test func everyTruncationIsRejectedNotReadPastTheEnd() throws {
        let bytes = try encode(try message("orders.eu", "", headers: [MessageHeader(name: "name", value: "value")]))
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
