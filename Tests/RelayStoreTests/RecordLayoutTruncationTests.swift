import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// `RecordCodec.layout` checks every length against the record before a
/// replay copies fields out of the map (its bounds check is inlined, the
/// error built out of line: wave 10). A record cut anywhere must be refused
/// as invalid, naming the offset, never read past its end.
@Suite("Record layout of truncated records")
struct RecordLayoutTruncationTests {
    @Test("every prefix of a record with headers is refused as truncated; the whole record lays out field by field")
    func everyPrefixIsRefused() throws {
        let original = try message("a.b.c", "payload bytes", headers: try headerBlock([("k1", "v1"), ("key-2", "")]))
        let size = try RecordCodec.size(of: original)
        var bytes = [UInt8](repeating: 0xEE, count: size)
        bytes.withUnsafeMutableBytes { RecordCodec.encode(original, timestamp: 99, into: $0) }

        let layout = try bytes.withBytes { (raw) throws(StoreError) in try RecordCodec.layout(of: raw, sequence: 5) }
        #expect(layout.timestamp == 99)
        #expect(Array(bytes[layout.topic]) == Array("a.b.c".utf8))
        #expect(Array(bytes[layout.principal]) == Array(testPublisher.principal.utf8))
        #expect(layout.headerCount == 2)
        #expect(Array(bytes[layout.payload]) == Array("payload bytes".utf8))
        #expect(layout.payload.upperBound == size)

        // Cutting the payload short still lays out (the payload is the rest);
        // any cut before the payload starts must throw.
        var refused = 0
        for length in 0..<layout.payload.lowerBound {
            let prefix = Array(bytes[0..<length])
            let reason = try prefix.withBytes { (raw) throws(StoreError) -> String? in
                do throws(StoreError) {
                    _ = try RecordCodec.layout(of: raw, sequence: 5)
                    return nil
                } catch {
                    guard case .invalidRecord(let sequence, let reason) = error, sequence == 5 else { return "\(error)" }
                    return reason
                }
            }
            #expect(reason?.hasPrefix("record truncated at offset") == true, "prefix of \(length) bytes: \(String(describing: reason))")
            if reason != nil { refused += 1 }
        }
        #expect(refused == layout.payload.lowerBound)
    }
}
