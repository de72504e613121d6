import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The plain-HTTP observability listener: `/metrics` (Prometheus text),
/// `/healthz` (the process runs) and `/readyz` (the broker accepts clients).
/// Localhost by default; it serves no client data.
///
/// It shares relayd's file descriptors with the TLS listener, so it is
/// bounded: at most `maxConnections` open at once (more are closed at
/// accept), and each gets `requestTimeout` from accept to its response,
/// which closes idle and slow-header connections.
public final class MetricsHTTPServer: Sendable {
    private let channel: any Channel

    public var port: Int { channel.localAddress?.port ?? 0 }

    public static func start(host: String, port: Int, group: any EventLoopGroup, metrics: BrokerMetrics,
                             maxConnections: Int = 64, requestTimeout: TimeAmount = .seconds(5),
                             logger: Logger = Logger(label: "relayd.metrics"),
                             notReady: @escaping @Sendable () -> String?) async throws -> MetricsHTTPServer {
        let admission = Admission(limit: maxConnections)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard admission.enter() else {
                    metrics.metricsConnectionsRefused.increment()
                    if admission.shouldWarn() {
                        logger.warning("metrics listener at metrics.max_connections; closing new connections",
                                       metadata: ["max_connections": "\(maxConnections)"])
                    }
                    return channel.close()
                }
                metrics.metricsConnectionsOpen.increment()
                let deadline = channel.eventLoop.scheduleTask(in: requestTimeout) {
                    metrics.metricsConnectionsTimedOut.increment()
                    channel.close(promise: nil)
                }
                channel.closeFuture.whenComplete { _ in
                    deadline.cancel()
                    admission.leave()
                    metrics.metricsConnectionsOpen.decrement()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(metrics: metrics, notReady: notReady))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsHTTPServer(channel: channel)
    }

    private init(channel: any Channel) { self.channel = channel }

    /// Open-connection count against the cap, shared by every event loop.
    private final class Admission: Sendable {
        private let state = NIOLockedValueBox((open: 0, lastWarning: NIODeadline.distantPast))
        let limit: Int
        init(limit: Int) { self.limit = limit }

        func enter() -> Bool {
            state.withLockedValue { state in
                guard state.open < limit else { return false }
                state.open += 1
                return true
            }
        }

        func leave() { state.withLockedValue { $0.open -= 1 } }

        /// One warning per 10 s while connections are being refused.
        func shouldWarn() -> Bool {
            state.withLockedValue { state in
                let now = NIODeadline.now()
                guard now - state.lastWarning >= .seconds(10) else { return false }
                state.lastWarning = now
                return true
            }
        }
    }

    public func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let metrics: BrokerMetrics
        /// nil when ready, else why not (the 503's body).
        let notReady: @Sendable () -> String?
        var uri = ""

        init(metrics: BrokerMetrics, notReady: @escaping @Sendable () -> String?) {
            self.metrics = metrics
            self.notReady = notReady
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                uri = head.uri
            case .body:
                break
            case .end:
                let (status, body): (HTTPResponseStatus, String)
                switch uri {
                case "/metrics": (status, body) = (.ok, metrics.exposition())
                case "/healthz": (status, body) = (.ok, "ok\n")
                case "/readyz": (status, body) = notReady().map { (.serviceUnavailable, "not ready: \($0)\n") } ?? (.ok, "ready\n")
                default: (status, body) = (.notFound, "not found: try /metrics, /healthz or /readyz\n")
                }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: uri == "/metrics" ? "text/plain; version=0.0.4" : "text/plain")
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                headers.add(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                // The context is the loop's: bound to it for the @Sendable completion.
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
            }
        }
    }
}
