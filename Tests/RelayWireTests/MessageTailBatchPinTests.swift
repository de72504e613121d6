import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// ``MessageTailBatch`` writes each tail byte for byte as
/// ``PreparedMessage``'s initializer does (itself pinned to the spec's
/// layout in MessageTailPinTests): repeated and changing topics,
/// principals and fingerprints (the copied-middle path and the full
/// encoding), headers, and batches that span several chunks.
@Suite struct MessageTailBatchPinTests {
    struct Input {
        var topic: String
        var principal: String
        var fingerprint: CertificateFingerprint
        var headers: Headers
        var payload: ByteBuffer
    }

    static let one = CertificateFingerprint(w0: 1, w1: 2, w2: 3, w3: 4)
    static let two = CertificateFingerprint(w0: 0xFF, w1: 0xEE, w2: 0xDD, w3: 0xCC)

    static func inputs(count: Int, payloadBytes: Int) -> [Input] {
        (0..<count).map { index in
            // Runs of a repeated topic, a topic of the same length, a new
            // principal and a new fingerprint, and a message with headers.
            let topic = index % 7 < 4 ? "bench.pubsub.ab" : (index % 7 == 4 ? "bench.pubsub.cd" : "t.\(index)")
            let principal = index % 11 == 10 ? "svd" : "svc"
            let fingerprint = index % 13 == 12 ? two : one
            let headers: Headers = index % 5 == 3 ? [("k", "v\(index)")] : .empty
            let payload = ByteBuffer(bytes: (0..<payloadBytes).map { UInt8(truncatingIfNeeded: $0 &+ index) })
            return Input(topic: topic, principal: principal, fingerprint: fingerprint, headers: headers, payload: payload)
        }
    }

    @Test("every tail equals PreparedMessage's, in order", arguments: [(1, 0), (40, 128), (300, 700), (5, 70_000)])
    func tailsMatchPreparedMessage(count: Int, payloadBytes: Int) throws {
        let inputs = Self.inputs(count: count, payloadBytes: payloadBytes)
        var batch = MessageTailBatch(count: count)
        for (index, input) in inputs.enumerated() {
            try batch.append(sequence: UInt64(index + 1), timestamp: 1_000 + UInt64(index), topic: input.topic,
                             publisherPrincipal: input.principal, publisherFingerprint: input.fingerprint,
                             headers: input.headers, payload: input.payload)
        }
        let tails = batch.finish()
        #expect(tails.count == count)
        for (index, input) in inputs.enumerated() where index < tails.count {
            let expected = try PreparedMessage(sequence: UInt64(index + 1), timestamp: 1_000 + UInt64(index), topic: input.topic,
                                               publisherPrincipal: input.principal, publisherFingerprint: input.fingerprint,
                                               headers: input.headers, payload: input.payload)
            #expect(tails[index].tail == expected.tail, "tail \(index)")
        }
    }

    @Test("a refused message appends nothing; the next one is intact")
    func refusedMessageAppendsNothing() throws {
        var batch = MessageTailBatch(count: 3)
        let payload = ByteBuffer(string: "p")
        try batch.append(sequence: 1, timestamp: 1, topic: "a.b", publisherPrincipal: "svc", publisherFingerprint: Self.one,
                         headers: .empty, payload: payload)
        #expect(throws: WireError.self) {
            try batch.append(sequence: 2, timestamp: 2, topic: String(repeating: "x", count: 70_000), publisherPrincipal: "svc",
                             publisherFingerprint: Self.one, headers: .empty, payload: payload)
        }
        try batch.append(sequence: 3, timestamp: 3, topic: "a.b", publisherPrincipal: "svc", publisherFingerprint: Self.one,
                         headers: .empty, payload: payload)
        let tails = batch.finish()
        let expected = try PreparedMessage(sequence: 3, timestamp: 3, topic: "a.b", publisherPrincipal: "svc",
                                           publisherFingerprint: Self.one, headers: .empty, payload: payload)
        #expect(tails.count == 2)
        #expect(tails.last?.tail == expected.tail)
    }
}
