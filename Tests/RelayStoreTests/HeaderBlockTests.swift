import NIOCore
import RelayCore
@testable import RelayStore
import RelayWire
import Testing

/// The store keeps the publisher's header block as bytes: what goes in is
/// what comes out, old records read back as the same protocol block, and
/// what cannot be carried is reported instead of dropped.
@Suite struct HeaderBlockTests {
    func decode(_ records: [[UInt8]]) throws -> [StoredMessage] {
        var decoder = RecordDecoder(expectedBytes: 64)
        for (index, record) in records.enumerated() {
            try record.withBytes { (raw) throws(StoreError) in try decoder.decode(raw, sequence: UInt64(index + 1)) }
        }
        return decoder.finish()
    }

    @Test("a block with repeated keys in the publisher's order comes back byte for byte")
    func blockRoundTripsVerbatim() async throws {
        let block = try headerBlock([("b", "2"), ("a", ""), ("b", "1"), ("é", "\u{0}\u{FFFE}")])
        try await withStore { store, _ in
            _ = try await store.append(try message("h", "x", headers: block))
            let stored = try #require(try store.read(from: 1, filter: TopicFilter("h")).messages.first)
            #expect(stored.headers.count == 4)
            #expect(Array(buffer: stored.headers.encoded) == Array(buffer: block.encoded))
        }
    }

    @Test("a block that does not hold exactly its count of fields is refused, alone")
    func malformedBlockIsRefused() async throws {
        let two = try headerBlock([("a", "1"), ("b", "2")])
        let short = HeaderBlock(count: 3, encoded: two.encoded)
        var cut = two.encoded
        cut.moveWriterIndex(to: cut.writerIndex - 1)
        try await withStore { store, _ in
            let results = await store.append([try message("h", "1", headers: short), try message("h", "2", headers: HeaderBlock(count: 2, encoded: cut)),
                                              try message("h", "3", headers: two)])
            for result in results.prefix(2) {
                let read = { try result.get() }
                let namesHeaderBlock: (any Error) -> Bool = { error in
                    guard case .invalidArgument(let reason) = error as? StoreError else { return false }
                    return reason.contains("header block")
                }
                #expect(performing: read, throws: namesHeaderBlock)
            }
            #expect(try results[2].get().sequence == 1)
        }
    }

    @Test("a record older writers stored reads back as the protocol's header block")
    func oldRecordHeadersBecomeTheProtocolBlock() throws {
        let fields = [("trace", "b"), ("trace", "a"), ("x", "")]
        let record = OldFormatRecord.encode(timestamp: 1, topic: "t", principal: "p", fingerprint: testDigest.hex,
                                            headers: fields.map { (name: $0.0, value: $0.1) }, payload: "body")
        let stored = try #require(try decode([record]).first)
        #expect(stored.headers == (try headerBlock(fields)))
        #expect(stored.text == "body")
    }

    @Test("a stored header value a MSG cannot carry is reported, not delivered without its headers")
    func oversizedStoredValueIsReported() throws {
        // Only the store API could write this (relayd's values are str16).
        let record = OldFormatRecord.encode(timestamp: 1, topic: "t", principal: "p", fingerprint: testDigest.hex,
                                            headers: [(name: "big", value: String(repeating: "v", count: 70_000))], payload: "")
        #expect {
            _ = try decode([record])
        } throws: { error in
            guard case .invalidRecord(1, let reason) = error as? StoreError else { return false }
            return reason.contains("70000 bytes")
        }
    }
}
