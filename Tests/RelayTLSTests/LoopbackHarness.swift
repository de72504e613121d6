import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayTLS
import RelayTestSupport

/// What one side of a loopback connection saw, readable from any thread.
final class ConnectionLog: Sendable {
    private let state = NIOLockedValueBox<(received: [UInt8], handshakes: [TLSHandshakeCompleted], errors: [String], tlsErrors: [TLSError], closed: Int)>(([], [], [], [], 0))

    var received: [UInt8] { state.withLockedValue { $0.received } }
    var handshakes: [TLSHandshakeCompleted] { state.withLockedValue { $0.handshakes } }
    var tlsErrors: [TLSError] { state.withLockedValue { $0.tlsErrors } }
    var errors: [String] { state.withLockedValue { $0.errors } }
    var closedCount: Int { state.withLockedValue { $0.closed } }
    /// When the channel last went inactive: a timing check reads this, not
    /// the moment a (possibly starved) poller noticed the close.
    var lastClosedAt: Date? { closedAt.withLockedValue { $0 } }
    private let closedAt = NIOLockedValueBox<Date?>(nil)

    func append(_ bytes: [UInt8]) { state.withLockedValue { $0.received += bytes } }
    func handshake(_ event: TLSHandshakeCompleted) { state.withLockedValue { $0.handshakes.append(event) } }
    func error(_ error: any Error) {
        state.withLockedValue {
            $0.errors.append("\(error)")
            if let tls = error as? TLSError { $0.tlsErrors.append(tls) }
        }
    }
    func closed() {
        closedAt.withLockedValue { $0 = Date() }
        state.withLockedValue { $0.closed += 1 }
    }
}

/// The application above the TLS handler in tests: records everything and,
/// on the server, echoes what it reads.
final class RecordingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let log: ConnectionLog
    let echo: Bool

    init(log: ConnectionLog, echo: Bool) {
        self.log = log
        self.echo = echo
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        log.append(Array(buffer.readableBytesView))
        if echo { context.write(wrapOutboundOut(buffer), promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if echo { context.flush() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompleted { log.handshake(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { log.error(error) }

    func channelInactive(context: ChannelHandlerContext) { log.closed() }
}

/// Our TLS server on 127.0.0.1 with a free port, echoing what it reads.
struct LoopbackServer {
    let channel: any Channel
    var log: ConnectionLog { logStorage }
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(_ holder: TLSServerContextHolder, group: any EventLoopGroup) async throws -> LoopbackServer {
        let log = ConnectionLog()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([try holder.makeHandler(), RecordingHandler(log: log, echo: true)])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackServer(channel: channel, log: log)
    }

    init(channel: any Channel, log: ConnectionLog) {
        self.channel = channel
        self.logStorage = log
    }
    private let logStorage: ConnectionLog

    func stop() async { try? await channel.close() }
}

/// Connects our TLS client to 127.0.0.1:`port`.
func connectClient(_ context: TLSClientContext, port: Int, group: any EventLoopGroup, serverName: String? = nil) async throws -> (any Channel, ConnectionLog) {
    let log = ConnectionLog()
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([try context.makeHandler(serverName: serverName), RecordingHandler(log: log, echo: false)])
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return (channel, log)
}

/// A port that was free a moment ago (for openssl s_server).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestHarnessError("bind failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

struct TestHarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A plain TCP client for sending raw (non-TLS or truncated) bytes.
final class RawBytesHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let log: ConnectionLog
    init(log: ConnectionLog) { self.log = log }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { log.append(Array(unwrapInboundIn(data).readableBytesView)) }
    func channelInactive(context: ChannelHandlerContext) { log.closed() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { log.error(error) }
}

func connectRaw(port: Int, group: any EventLoopGroup) async throws -> (any Channel, ConnectionLog) {
    let log = ConnectionLog()
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RawBytesHandler(log: log)) }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return (channel, log)
}

/// A real ClientHello from our client handler, captured from an EmbeddedChannel.
func capturedClientHello(_ pki: TLSTestPKI) throws -> [UInt8] {
    let pair = try EmbeddedTLSPair(
        client: try TLSClientContext(configuration: pki.clientConfiguration()).makeHandler(),
        server: try TLSServerContext(configuration: pki.serverConfiguration()).makeHandler())
    defer { pair.finish() }
    _ = pair.client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
    guard let hello = try pair.client.readOutbound(as: ByteBuffer.self) else { throw TestHarnessError("no ClientHello") }
    return Array(hello.readableBytesView)
}
