// RelayTLS: the TLSHandler's bulk path after the handshake, on one core.
//
// relay-bench-tls measures bulk throughput over a loopback socket with two
// event loops (kernel copies and scheduling included). Here the two
// TLSHandlers are joined back to back through NIO EmbeddedChannels, as the
// RelayTLS tests do (RelayTestSupport's EmbeddedTLSPair, which keeps every
// byte for the tests' checks, so not reused here): no sockets, no threads,
// only the handler and OpenSSL. One operation is what relay-bench-tls's
// BulkWriter does per flush: 16 writes of 16 KiB, then flush, which the
// handler turns into 16 full TLS records and one channel write.
// MB/s = 262,144 bytes / the time per operation.
import Benchmark
import NIOCore
import NIOEmbedded
import RelayTLS

/// The end of each pipeline: counts plaintext and handshakes, and keeps
/// errors instead of forwarding them (EmbeddedChannel would rethrow them
/// from the next call, far from their cause).
final class TLSEndpoint: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private(set) var plaintextBytes = 0
    private(set) var handshakes = 0
    private(set) var errors: [any Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        plaintextBytes &+= unwrapInboundIn(data).readableBytes
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted { handshakes += 1 }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
}

/// A client and a server TLSHandler with a completed mTLS 1.3 handshake
/// (ECDSA P-256 certificates from RelayTLS's DevelopmentPKI, in memory).
final class TLSFixture {
    static let writeSize = 16_384
    static let writesPerFlush = 16
    static let bytesPerOperation = writeSize * writesPerFlush

    let client: EmbeddedChannel
    let server: EmbeddedChannel
    let clientEnd = TLSEndpoint()
    let serverEnd = TLSEndpoint()
    let chunk: ByteBuffer

    init() throws {
        let ca = try DevelopmentPKI.createCA(commonName: "Bench CA")
        let serverCertificate = try DevelopmentPKI.issue(
            .server(commonName: "localhost", sans: [.dns("localhost"), .ip("127.0.0.1")]), signedBy: ca)
        let clientCertificate = try DevelopmentPKI.issue(.client(commonName: "bench", organizationalUnits: ["bench"]), signedBy: ca)
        let serverContext = try TLSServerContext(configuration: TLSServerConfiguration(
            certificateChain: .pem(serverCertificate.certificatePEM), privateKey: .pem(serverCertificate.privateKeyPEM),
            clientCAs: [.pem(ca.certificatePEM)]))
        let clientContext = try TLSClientContext(configuration: TLSClientConfiguration(
            certificateChain: .pem(clientCertificate.certificatePEM), privateKey: .pem(clientCertificate.privateKeyPEM),
            trustRoots: [.pem(ca.certificatePEM)], serverName: "localhost"))

        // One loop for both, so neither side's timers run ahead of the other.
        let loop = EmbeddedEventLoop()
        client = EmbeddedChannel(loop: loop)
        server = EmbeddedChannel(loop: loop)
        try client.pipeline.syncOperations.addHandlers([try clientContext.makeHandler(), clientEnd])
        try server.pipeline.syncOperations.addHandlers([try serverContext.makeHandler(), serverEnd])
        chunk = ByteBuffer(repeating: 0x5A, count: Self.writeSize)

        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        _ = server.connect(to: address)
        _ = client.connect(to: address)  // the client sends its ClientHello
        try exchange()
        let errors = clientEnd.errors + serverEnd.errors
        guard clientEnd.handshakes == 1, serverEnd.handshakes == 1, errors.isEmpty else {
            throw MicroBenchmarkError("the TLS handshake did not complete: \(errors)")
        }
    }

    /// Moves bytes both ways until neither side has anything to send (the
    /// handshake flights, then the server's session tickets).
    func exchange() throws {
        var moved = true
        while moved {
            moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                moved = true
                try server.writeInbound(bytes)
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                moved = true
                try client.writeInbound(bytes)
            }
        }
    }

    /// One operation's plaintext into the client handler: 16 writes, one flush.
    func writeAndFlush() {
        for _ in 0..<Self.writesPerFlush {
            client.pipeline.syncOperations.write(NIOAny(chunk), promise: nil)
        }
        client.pipeline.syncOperations.flush()
    }

    /// The client's ciphertext since the last call, handed to `use`.
    func takeCiphertext(_ use: (ByteBuffer) throws -> Void) throws -> Int {
        var bytes = 0
        while let ciphertext = try client.readOutbound(as: ByteBuffer.self) {
            bytes += ciphertext.readableBytes
            try use(ciphertext)
        }
        // 16 records of 16 KiB plus their headers and tags: anything less
        // means the handler dropped or held back data.
        guard bytes > Self.bytesPerOperation else {
            throw MicroBenchmarkError("\(bytes) bytes of ciphertext for \(Self.bytesPerOperation) of plaintext")
        }
        return bytes
    }

    deinit {
        _ = try? client.finish(acceptAlreadyClosed: true)
        _ = try? server.finish(acceptAlreadyClosed: true)
    }
}

func registerTLSBenchmarks() {
    // The sending side only (TLSHandler.write/flush: SSL_write of each
    // record into one buffer); the ciphertext is dropped.
    Benchmark("tls: encrypt 256 KiB (16 x 16 KiB writes, 1 flush)") { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            fixture.writeAndFlush()
            blackHole(try fixture.takeCiphertext { _ in })
        }
    } setup: {
        try TLSFixture()
    }

    // Both sides on this core: the client encrypts, the server handler
    // decrypts (fed up to 4 records per step, as from a socket read) and
    // passes the plaintext up its pipeline.
    Benchmark("tls: encrypt + decrypt 256 KiB, client to server handler") { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            let before = fixture.serverEnd.plaintextBytes
            fixture.writeAndFlush()
            _ = try fixture.takeCiphertext { try fixture.server.writeInbound($0) }
            let received = fixture.serverEnd.plaintextBytes - before
            guard received == TLSFixture.bytesPerOperation, fixture.serverEnd.errors.isEmpty else {
                throw MicroBenchmarkError("the server read \(received) of \(TLSFixture.bytesPerOperation) bytes; errors: \(fixture.serverEnd.errors)")
            }
        }
    } setup: {
        try TLSFixture()
    }
}
