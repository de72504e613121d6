import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RelayTLS
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
    /// - Parameters:
    ///   - configuration: where to connect, as whom, and how to reconnect.
    ///   - eventLoopGroup: where the connection runs; one event loop of it
    ///     serves this connection for its whole life, across reconnects.
    ///   - sessionID: the producer session used to deduplicate
    ///     re-sent publishes; a new random one by default. One kept from an
    ///     earlier run is fine: publish ids start at the wall clock (ns), so
    ///     they are above that run's.
    /// - Throws: ``RelayClientError`` with category `usage` when the TLS
    ///   files cannot be read or do not belong together.
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

    /// How many publishes were sent again after a reconnect because the lost
    /// connection took their PUBACK with it (same publish id, so the broker
    /// stores each once and answers an already stored one as a duplicate).
    public var resentPublishes: Int {
        get async {
            let core = self.core
            return (try? await core.eventLoop.submit { core.resentPublishCount }.get()) ?? 0
        }
    }

    /// How many keep-alive PINGs this connection has sent, over all its
    /// connections (``RelayClientConfiguration/keepaliveInterval``): one per
    /// silent interval, so a count that grows on an idle connection shows
    /// the check running while the broker answers it.
    public var keepalivePings: Int {
        get async {
            let core = self.core
            // The PING tokens count up from 1, one per PING sent.
            return (try? await core.eventLoop.submit { Int(core.keepaliveToken) }.get()) ?? 0
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

/// Client TLS contexts shared by every connection made with the same TLS
/// settings. Building one loads and parses the certificate, key, roots and
/// CRLs, which doubled a client's cost per connection. An entry is reused
/// only while every file it was built from is unchanged (same size,
/// modification time and inode), so a renewed certificate on disk is picked
/// up by the next new connection, as before.
enum TLSClientContextCache {
    private struct Entry {
        let files: [FileStamp?]
        let context: TLSClientContext
    }

    private struct FileStamp: Equatable {
        let size: Int64
        let modifiedSeconds: Int
        let modifiedNanoseconds: Int
        let inode: UInt64
    }

    /// A handful of configurations per process at most; cleared when full.
    private static let limit = 16
    private static let entries = NIOLockedValueBox<[TLSClientConfiguration: Entry]>([:])

    static func context(for configuration: TLSClientConfiguration) throws(TLSConfigurationError) -> TLSClientContext {
        let files = stamps(configuration)
        if let entry = entries.withLockedValue({ $0[configuration] }), entry.files == files {
            return entry.context
        }
        let context = try TLSClientContext(configuration: configuration)
        entries.withLockedValue { entries in
            if entries.count >= limit { entries.removeAll() }
            entries[configuration] = Entry(files: files, context: context)
        }
        return context
    }

    private static func stamps(_ configuration: TLSClientConfiguration) -> [FileStamp?] {
        let sources = [configuration.certificateChain, configuration.privateKey] + configuration.trustRoots + configuration.crls
        // stat(2) directly: FileManager.attributesOfItem builds a dictionary
        // of every attribute (owner names included) and was 6.5 % of the
        // client's CPU per connection in `relayctl bench connect`.
        return sources.map { source in
            guard case .file(let path) = source else { return nil }
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            #if canImport(Darwin)
            let modified = info.st_mtimespec
            #else
            let modified = info.st_mtim
            #endif
            return FileStamp(size: Int64(info.st_size), modifiedSeconds: Int(modified.tv_sec),
                             modifiedNanoseconds: Int(modified.tv_nsec), inode: UInt64(info.st_ino))
        }
    }
}
