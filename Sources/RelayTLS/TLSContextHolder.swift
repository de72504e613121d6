import NIOConcurrencyHelpers

/// The current server context, swapped atomically on reload. The listener's
/// channel initializer calls ``makeHandler()`` for each accepted connection,
/// so new handshakes use the newest context while established connections
/// keep the one they started with (their SSL objects hold a reference).
public final class TLSServerContextHolder: Sendable {
    private let box: NIOLockedValueBox<TLSServerContext>

    public init(_ context: TLSServerContext) { box = NIOLockedValueBox(context) }

    /// Loads `configuration` and builds a context from it.
    public convenience init(configuration: TLSServerConfiguration) throws(TLSConfigurationError) {
        self.init(try TLSServerContext(configuration: configuration))
    }

    public var current: TLSServerContext { box.withLockedValue { $0 } }

    /// Builds a context from `configuration` and swaps it in. If any file is
    /// bad this throws and the old context stays in use.
    @discardableResult
    public func reload(configuration: TLSServerConfiguration) throws(TLSConfigurationError) -> TLSServerContext {
        let context = try TLSServerContext(configuration: configuration)
        box.withLockedValue { $0 = context }
        return context
    }

    public func makeHandler() throws(TLSError) -> TLSHandler { try current.makeHandler() }
}

/// The client side's counterpart: reconnects after a reload use new files.
public final class TLSClientContextHolder: Sendable {
    private let box: NIOLockedValueBox<TLSClientContext>

    public init(_ context: TLSClientContext) { box = NIOLockedValueBox(context) }

    public convenience init(configuration: TLSClientConfiguration) throws(TLSConfigurationError) {
        self.init(try TLSClientContext(configuration: configuration))
    }

    public var current: TLSClientContext { box.withLockedValue { $0 } }

    @discardableResult
    public func reload(configuration: TLSClientConfiguration) throws(TLSConfigurationError) -> TLSClientContext {
        let context = try TLSClientContext(configuration: configuration)
        box.withLockedValue { $0 = context }
        return context
    }

    public func makeHandler(serverName: String? = nil) throws(TLSError) -> TLSHandler {
        try current.makeHandler(serverName: serverName)
    }
}
