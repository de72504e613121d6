import NIOCore
import NIOEmbedded
import RelayCore
import RelayTLS
import RelayTestSupport
import Testing

/// Pins how the TLS handler treats ciphertext however the network cuts it,
/// and what it reports for truncated or hostile input (wave 11: the memory
/// BIOs were replaced by a BIO over the caller's own bytes; these passed on
/// the memory-BIO code first and must not change).
@Suite struct CiphertextSplitTests {
    static func makePair(_ pki: TLSTestPKI) throws -> EmbeddedTLSPair {
        try EmbeddedTLSPair(
            client: try TLSClientContext(configuration: pki.clientConfiguration()).makeHandler(),
            server: try TLSServerContext(configuration: pki.serverConfiguration()).makeHandler())
    }

    enum Split: String, CaseIterable, CustomTestStringConvertible {
        case oneByte, random, whole
        var testDescription: String { rawValue }
    }

    static func pieces(_ split: Split, seed: UInt64) -> (Int) -> Int {
        var random = SeededRandom(seed: seed)
        return { remaining in
            switch split {
            case .oneByte: return 1
            // Mostly small cuts (inside headers and tags), sometimes past a record.
            case .random: return Int(random.next(below: random.next(below: 4) == 0 ? 40_000 : 40)) + 1
            case .whole: return remaining
            }
        }
    }

    static func payload(_ size: Int, salt: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ salt &* 7 &+ $0 >> 8) }
    }

    /// The handshake, writes of 1 B to over four records each way, and the
    /// close_notify exchange, every ciphertext write cut as `split` says:
    /// the plaintext arrives byte for byte and the session ends cleanly.
    @Test(arguments: Split.allCases)
    func wholeSessionSurvivesEveryCut(split: Split) throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        let cut = Self.pieces(split, seed: 0x5EED_0011)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        _ = pair.server.connect(to: address)
        _ = pair.client.connect(to: address)
        try pair.interact(pieceLength: cut)
        #expect(pair.clientRecorder.handshake != nil && pair.serverRecorder.handshake != nil)

        var upstream: [UInt8] = []
        var downstream: [UInt8] = []
        for (index, size) in [1, 300, 16_384, 16_385, 70_000].enumerated() {
            let up = Self.payload(size, salt: index)
            let down = Self.payload(size, salt: index + 100)
            upstream += up
            downstream += down
            try pair.client.writeOutbound(pair.client.allocator.buffer(bytes: up))
            try pair.server.writeOutbound(pair.server.allocator.buffer(bytes: down))
            try pair.interact(pieceLength: cut)
        }
        #expect(pair.serverRecorder.received == upstream)
        #expect(pair.clientRecorder.received == downstream)

        let closed = pair.client.close()
        try pair.interact(pieceLength: cut)
        try closed.wait()
        #expect(!pair.server.isActive && pair.serverRecorder.inactive)
        #expect(pair.serverRecorder.errors.isEmpty && pair.clientRecorder.errors.isEmpty)
    }

    /// The client's last handshake flight and its first record (written
    /// before the handshake ended) in one read, as TCP may coalesce them: the
    /// handshake ends inside that read, and the record after it is still
    /// delivered (the session BIO keeps the ciphertext OpenSSL has not read
    /// yet). Written for the mutant `tls-unread-dropped`, which no test with
    /// one write per read could see.
    @Test func handshakeEndAndFirstRecordInOneRead() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        _ = pair.server.connect(to: address)
        _ = pair.client.connect(to: address)
        let first = Self.payload(300, salt: 3)
        pair.client.writeAndFlush(pair.client.allocator.buffer(bytes: first), promise: nil)
        while let hello = try pair.client.readOutbound(as: ByteBuffer.self) { try pair.server.writeInbound(hello) }
        while let flight = try pair.server.readOutbound(as: ByteBuffer.self) { try pair.client.writeInbound(flight) }
        #expect(pair.clientRecorder.handshake != nil && pair.serverRecorder.handshake == nil)
        var coalesced = pair.server.allocator.buffer(capacity: 4096)
        var writes = 0
        while var bytes = try pair.client.readOutbound(as: ByteBuffer.self) {
            coalesced.writeBuffer(&bytes)
            writes += 1
        }
        #expect(writes >= 2, "the client's writes after the server's flight: \(writes) (its flight, then the record)")
        try pair.server.writeInbound(coalesced)
        #expect(pair.serverRecorder.handshake != nil)
        #expect(pair.serverRecorder.received == first, "the server got \(pair.serverRecorder.received.count) of 300 bytes")
        #expect(pair.serverRecorder.errors.isEmpty && pair.server.isActive)
    }

    /// A record cut short, then the transport closes: nothing of it is
    /// delivered and the loss is reported as truncation.
    @Test(arguments: [1, 5, 6, 20])
    func truncatedRecordThenEOFIsTruncation(keptBytesShort: Int) throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        try pair.connect()
        try pair.client.writeOutbound(pair.client.allocator.buffer(bytes: Self.payload(40, salt: 1)))
        let record = try #require(try pair.client.readOutbound(as: ByteBuffer.self))
        let kept = record.readableBytes - keptBytesShort
        try pair.server.writeInbound(try #require(record.getSlice(at: record.readerIndex, length: kept)))
        #expect(pair.serverRecorder.received.isEmpty && pair.server.isActive)
        pair.server.pipeline.fireChannelInactive()
        #expect(pair.serverRecorder.tlsErrors == [.unexpectedEOF(duringHandshake: false)])
        #expect(pair.serverRecorder.received.isEmpty)
    }

    enum Hostile: String, CaseIterable, CustomTestStringConvertible {
        /// Plain text after a completed handshake.
        case garbage
        /// An application-data header announcing 18,433 bytes (the limit is 16,384 + 256).
        case oversizedRecord
        /// A well-formed header whose body is not a valid AEAD record.
        case forgedRecord
        var testDescription: String { rawValue }

        var bytes: [UInt8] {
            switch self {
            case .garbage: return Array("PUB orders.created 5\r\nhello\r\n".utf8)
            case .oversizedRecord: return [23, 3, 3, 0x48, 0x01] + [UInt8](repeating: 0xAB, count: 18_433)
            case .forgedRecord: return [23, 3, 3, 0, 40] + [UInt8](repeating: 0x5A, count: 40)
            }
        }

        /// What the memory-BIO code reported (OpenSSL 3.0's reason strings).
        var expected: TLSError {
            switch self {
            case .garbage: return .protocolError(reason: "wrong version number")
            case .oversizedRecord: return .protocolError(reason: "packet length too long")
            case .forgedRecord: return .protocolError(reason: "decryption failed or bad record mac")
            }
        }
    }

    /// Hostile bytes after the handshake, whole or one byte at a time: the
    /// same typed error, an alert record sent, the channel closed, nothing delivered.
    @Test(arguments: Hostile.allCases, [false, true])
    func hostileBytesAfterHandshake(hostile: Hostile, oneByteAtATime: Bool) throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try Self.makePair(pki)
        defer { pair.finish() }
        try pair.connect()
        let writesBefore = pair.serverWrites.count
        if oneByteAtATime {
            for byte in hostile.bytes where pair.server.isActive { try pair.sendToServer([byte]) }
        } else {
            try pair.sendToServer(hostile.bytes)
        }
        #expect(pair.serverRecorder.tlsErrors == [hostile.expected])
        #expect(!pair.server.isActive)
        #expect(pair.serverRecorder.received.isEmpty)
        try pair.interact()
        // The server's alert: one record, 2 alert bytes + inner type + 16-byte tag.
        let answer = pair.serverWrites[writesBefore...].map(\.readableBytes)
        #expect(answer == [5 + 19], "the server's writes after the hostile bytes: \(answer)")
    }
}
