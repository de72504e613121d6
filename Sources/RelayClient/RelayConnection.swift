import NIOCore
import NIOPosix
import RelayWire

/// One logical connection to a Relay broker: mutual TLS, HELLO/WELCOME, and
/// automatic reconnection with exponential backoff and jitter. A
/// ``Publisher`` and a ``Subscriber`` can share one.
///
/// ```swift
/// let connection = try await RelayConnection.connect(configuration)
/// print("connected as", try await connection.session?.principal ?? "?")
/// ```
///
/// After the first WELCOME, a lost connection is re-established while the
/// error is retryable (the broker went away, restarted, shut down); publishes
/// not yet acknowledged are re-sent with the same ids in the same producer
/// session, and subscriptions are resumed without gaps or duplicates. Errors
/// retrying cannot fix (a refused certificate, a policy that grants nothing)
/// close the connection and fail everything pending with that error.
public final class RelayConnection: Sendable {
    let core: ConnectionCore

    /// Creates the connection without connecting; call ``connect()``.
    /// - Parameter sessionID: the producer session used to deduplicate
    ///   re-sent publishes; a new random one by default.
    public init(configuration: RelayClientConfiguration,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                sessionID: ProducerSessionID = .random()) throws(RelayClientError) {
        core = try ConnectionCore(configuration: configuration, eventLoop: eventLoopGroup.next(), sessionID: sessionID)
    }

    /// Creates a connection and waits for the broker's WELCOME.
    public static func connect(_ configuration: RelayClientConfiguration,
                               eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws(RelayClientError) -> RelayConnection {
        let connection = try RelayConnection(configuration: configuration, eventLoopGroup: eventLoopGroup)
        try await connection.connect()
        return connection
    }

    /// Connects (once) and waits for WELCOME; returns who the broker says we are.
    @discardableResult
    public func connect() async throws(RelayClientError) -> SessionInfo {
        let core = self.core
        do {
            return try await core.eventLoop.flatSubmit { core.start() }.get()
        } catch {
            throw RelayClientError.from(error, server: core.configuration.server)
        }
    }

    /// The broker's WELCOME of the current connection, or nil while not connected.
    public var session: SessionInfo? {
        get async {
            let core = self.core
            return try? await core.eventLoop.submit { core.session }.get()
        }
    }

    /// The configuration this connection was made with.
    public var configuration: RelayClientConfiguration { core.configuration }

    /// The producer session id sent in every HELLO of this connection.
    public var sessionID: ProducerSessionID { core.sessionID }

    /// A stream of state changes, starting with the current state and
    /// finishing after ``ConnectionState/closed(_:)``. Each call makes a new stream.
    public var states: AsyncStream<ConnectionState> {
        let (stream, continuation) = AsyncStream<ConnectionState>.makeStream()
        let core = self.core
        core.eventLoop.execute { core.addObserver(continuation) }
        return stream
    }

    /// Closes the connection: sends BYE, fails publishes still unanswered
    /// (use ``Publisher/flush()`` first to wait for them) and ends every
    /// subscription's stream normally.
    public func close() async {
        let core = self.core
        try? await core.eventLoop.submit { core.finish(nil) }.get()
    }
}
