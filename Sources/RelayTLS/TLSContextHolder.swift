import NIOConcurrencyHelpers

/// A TLS context built from one configuration: ``TLSServerContext`` or
/// ``TLSClientContext``, so one holder serves both sides.
public protocol TLSContextLoading: Sendable {
    associatedtype Configuration
    init(configuration: Configuration) throws(TLSConfigurationError)
}

extension TLSServerContext: TLSContextLoading {}
extension TLSClientContext: TLSContextLoading {}

/// The current context, swapped atomically on reload. The listener's
/// channel initializer calls `makeHandler()` for each accepted connection,
/// so new handshakes use the newest context while established connections
/// keep the one they started with (their SSL objects hold a reference).
public final class TLSContextHolder<Context: TLSContextLoading>: Sendable {
    private let box: NIOLockedValueBox<Context>

    public init(_ context: Context) { box = NIOLockedValueBox(context) }

    /// Loads `configuration` and builds a context from it.
    public convenience init(configuration: Context.Configuration) throws(TLSConfigurationError) {
        self.init(try Context(configuration: configuration))
    }

    public var current: Context { box.withLockedValue { $0 } }

    /// Builds a context from `configuration` and swaps it in. If any file is
    /// bad this throws and the old context stays in use.
    @discardableResult
    public func reload(configuration: Context.Configuration) throws(TLSConfigurationError) -> Context {
        let context = try Context(configuration: configuration)
        box.withLockedValue { $0 = context }
        return context
    }
}

public typealias TLSServerContextHolder = TLSContextHolder<TLSServerContext>

extension TLSContextHolder where Context == TLSServerContext {
    public func makeHandler() throws(TLSError) -> TLSHandler { try current.makeHandler() }
}
