import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayTLS

/// Counts handshakes and bytes on the server side.
final class ServerCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let handshakes = ManagedCounter()
    let bytes = ManagedCounter()
    let target: Int
    let done: EventLoopPromise<Void>?

    init(target: Int = .max, done: EventLoopPromise<Void>? = nil) {
        self.target = target
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if bytes.add(unwrapInboundIn(data).readableBytes) >= target { done?.succeed() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted { _ = handshakes.add(1) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

final class ManagedCounter: Sendable {
    private let box = NIOLockedValueBox(0)
    @discardableResult func add(_ n: Int) -> Int { box.withLockedValue { $0 += n; return $0 } }
    var value: Int { box.withLockedValue { $0 } }
}

func startServer(_ configuration: TLSServerConfiguration, group: any EventLoopGroup, counter: ServerCounter,
                 bulkReads: Bool = false) async throws -> any Channel {
    let context = try TLSServerContext(configuration: configuration)
    // Bulk peers send 16 KiB records back to back: let one read take up to
    // 256 KiB (NIO's default caps at 64 KiB) to save syscalls. Idle and
    // handshake runs keep NIO's default, as the broker does: each channel
    // keeps its receive buffer, so a bigger initial size costs idle memory.
    let allocator = bulkReads
        ? AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16_384, maximum: 262_144)
        : AdaptiveRecvByteBufferAllocator()
    return try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.recvAllocator, value: allocator)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([try context.makeHandler(), counter])
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

// MARK: Bulk

/// Writes `total` bytes in 16 KiB buffers as fast as writability allows,
/// flushing every 16 writes (one SSL_write per buffer, one syscall per flush).
final class BulkWriter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    var sent = 0
    var chunk: ByteBuffer?
    var started = false

    init(total: Int) { self.total = total }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted {
            started = true
            chunk = context.channel.allocator.buffer(repeating: 0x5A, count: 16_384)
            pump(context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if started { pump(context: context) }
    }

    func pump(context: ChannelHandlerContext) {
        guard let chunk else { return }
        while sent < total && context.channel.isWritable {
            for _ in 0..<16 where sent < total {
                context.write(wrapOutboundOut(chunk), promise: nil)
                sent += chunk.readableBytes
            }
            context.flush()
        }
    }
}

struct BulkFigures {
    var bytesPerSecond: Double
    var bytes: Double
    var clientCPU: Double
    var serverCPU: Double
}

func measureBulk(pki: BenchPKI, bytes: Int) async throws -> BulkFigures {
    let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let done = serverGroup.next().makePromise(of: Void.self)
    let counter = ServerCounter(target: bytes, done: done)
    let server = try await startServer(pki.server, group: serverGroup, counter: counter, bulkReads: true)
    let port = server.localAddress?.port ?? 0
    let clientContext = try TLSClientContext(configuration: pki.client)
    let serverCPUStart = try await serverGroup.next().submit { threadCPUSeconds() }.get()
    let clientCPUStart = try await clientGroup.next().submit { threadCPUSeconds() }.get()
    let start = monotonicSeconds()
    let client = try await ClientBootstrap(group: clientGroup)
        // NIO's default high-water mark (64 KiB) makes a bulk writer stop
        // after every flush; a few MiB keeps the socket busy.
        .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([try clientContext.makeHandler(), BulkWriter(total: bytes)])
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try await done.futureResult.get()
    let elapsed = monotonicSeconds() - start
    let serverCPU = try await serverGroup.next().submit { threadCPUSeconds() }.get() - serverCPUStart
    let clientCPU = try await clientGroup.next().submit { threadCPUSeconds() }.get() - clientCPUStart
    try? await client.close()
    try? await server.close()
    try? await serverGroup.shutdownGracefully()
    try? await clientGroup.shutdownGracefully()
    return BulkFigures(bytesPerSecond: Double(bytes) / elapsed, bytes: Double(bytes), clientCPU: clientCPU, serverCPU: serverCPU)
}

// MARK: Handshakes

struct HandshakeFigures {
    var wallPerSecond: Double
    var serverCPUMillisecondsEach: Double
}

/// Closes the client as soon as its handshake completes.
final class CloseOnHandshake: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted { context.close(promise: nil) }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

func measureHandshakes(pki: BenchPKI, seconds: Double, concurrency: Int) async throws -> HandshakeFigures {
    let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let counter = ServerCounter()
    let server = try await startServer(pki.server, group: serverGroup, counter: counter)
    let port = server.localAddress?.port ?? 0
    let clientContext = try TLSClientContext(configuration: pki.client)
    @Sendable func makeBootstrap() -> ClientBootstrap {
        ClientBootstrap(group: clientGroup).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([try clientContext.makeHandler(), CloseOnHandshake()])
            }
        }
    }
    let serverLoop = serverGroup.next()
    let cpuStart = try await serverLoop.submit { threadCPUSeconds() }.get()
    let start = monotonicSeconds()
    let deadline = start + seconds
    let handshakesAtStart = counter.handshakes.value
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                let bootstrap = makeBootstrap()
                while monotonicSeconds() < deadline {
                    let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
                    try await channel.closeFuture.get()
                }
            }
        }
        try await group.waitForAll()
    }
    // Let the server finish the last handshakes in flight.
    try await Task.sleep(nanoseconds: 200_000_000)
    let cpuEnd = try await serverLoop.submit { threadCPUSeconds() }.get()
    let elapsed = monotonicSeconds() - start
    let completed = Double(counter.handshakes.value - handshakesAtStart)
    try? await server.close()
    try? await serverGroup.shutdownGracefully()
    try? await clientGroup.shutdownGracefully()
    return HandshakeFigures(wallPerSecond: completed / elapsed, serverCPUMillisecondsEach: (cpuEnd - cpuStart) * 1000 / completed)
}

// MARK: Idle memory

func measureIdleMemory(pki: BenchPKI, connections: Int) async throws -> Double {
    let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let counter = ServerCounter()
    let server = try await startServer(pki.server, group: serverGroup, counter: counter)
    let port = server.localAddress?.port ?? 0
    // Warm up: one connection so lazily allocated globals are in the baseline.
    let warmup = try IdleClientChild.spawn(port: port, count: 1, directory: pki.directory)
    let warmupUntil = monotonicSeconds() + 30
    while counter.handshakes.value < 1 {
        guard monotonicSeconds() < warmupUntil else { throw BenchError("the idle-client child did not connect (is \(CommandLine.arguments[0]) runnable?)") }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    try await Task.sleep(nanoseconds: 200_000_000)
    warmup.terminate()
    warmup.waitUntilExit()
    try await Task.sleep(nanoseconds: 300_000_000)
    _ = try await serverGroup.next().submit { trimHeap() }.get()
    let before = residentBytes()

    let child = try IdleClientChild.spawn(port: port, count: connections, directory: pki.directory)
    let waitUntil = monotonicSeconds() + 120
    while counter.handshakes.value < connections + 1 && monotonicSeconds() < waitUntil {
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    guard counter.handshakes.value >= connections + 1 else { throw BenchError("only \(counter.handshakes.value - 1) idle connections came up") }
    try await Task.sleep(nanoseconds: 500_000_000)
    _ = try await serverGroup.next().submit { trimHeap() }.get()
    let after = residentBytes()
    child.terminate()
    child.waitUntilExit()
    try? await server.close()
    try? await serverGroup.shutdownGracefully()
    return (after - before) / Double(connections)
}

/// The child process that holds idle client connections.
enum IdleClientChild {
    static func spawn(port: Int, count: Int, directory: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["idle-clients", "\(port)", "\(count)", directory]
        process.standardInput = Pipe()
        try process.run()
        return process
    }

    static func run(arguments: [String]) async throws {
        guard arguments.count == 3, let port = Int(arguments[0]), let count = Int(arguments[1]) else {
            throw BenchError("usage: relay-bench-tls idle-clients <port> <count> <pki directory>")
        }
        raiseFileLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let context = try TLSClientContext(configuration: BenchPKI.clientConfiguration(directory: arguments[2]))
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(try context.makeHandler()) }
        }
        var channels: [any Channel] = []
        for _ in 0..<count { channels.append(try await bootstrap.connect(host: "127.0.0.1", port: port).get()) }
        // Hold them until the parent terminates us.
        while true { try await Task.sleep(nanoseconds: 1_000_000_000) }
    }
}

/// glibc's malloc_trim (not in the Glibc module map): returns freed heap
/// pages to the kernel so RSS reflects live memory.
@_silgen_name("malloc_trim") func glibcMallocTrim(_ pad: Int) -> Int32
@discardableResult func trimHeap() -> Int32 { glibcMallocTrim(0) }
