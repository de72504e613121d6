import NIOConcurrencyHelpers
import NIOCore
import RelayCore
import RelayWire

/// Opens subscriptions. Each ``RelaySubscription`` is an `AsyncSequence` of
/// ``ReceivedMessage``; flow control (CREDIT) is managed for the caller.
///
/// ```swift
/// let subscriber = try await Subscriber.connect(configuration)
/// let orders = try await subscriber.subscribe(filter: "orders.>", from: .earliest, durable: "billing")
/// for try await message in orders {
///     print(message.sequence, message.publisherPrincipal, message.text ?? "<binary>")
///     orders.ack(message)
/// }
/// ```
public final class Subscriber: Sendable {
    /// The connection subscriptions go through (its ``RelayConnection/states``
    /// report reconnects; subscriptions resume by themselves).
    public let connection: RelayConnection

    /// Uses an existing connection (shared with a ``Publisher`` if you like).
    public init(connection: RelayConnection) {
        self.connection = connection
    }

    /// Connects and waits for WELCOME.
    public static func connect(_ configuration: RelayClientConfiguration) async throws(RelayClientError) -> Subscriber {
        Subscriber(connection: try await RelayConnection.connect(configuration))
    }

    /// Opens a subscription and returns once the broker accepted it.
    ///
    /// - Parameters:
    ///   - filter: a topic filter (`orders.*.created`, `orders.>`).
    ///   - start: where to start (`from:`); ignored by the broker when the durable cursor exists.
    ///   - durable: a name for a durable cursor the broker keeps for this
    ///     identity. Delivery resumes after the last ``RelaySubscription/ack(_:)``
    ///     on reconnects and in later runs. Durable subscriptions must be acknowledged.
    ///   - window: how many messages may be delivered ahead of the consumer
    ///     (the credit granted to the broker).
    /// - Throws: ``RelayClientError`` when the filter is invalid or the broker
    ///   refused the subscription (e.g. `not_authorized`).
    public func subscribe(filter: String, from start: StartPosition = .latest, durable: String? = nil,
                          window: UInt32 = 1024) async throws(RelayClientError) -> RelaySubscription {
        let durableName = try Self.validate(filter: filter, start: start, durable: durable)
        let core = connection.core
        let (stream, continuation) = AsyncThrowingStream<ReceivedMessage, any Error>.makeStream()
        let opened: (UInt32, EventLoopFuture<SubscribeAck>)
        do {
            opened = try await core.eventLoop.submit {
                core.subscribe(filter: filter, start: start, durableName: durableName, window: window, sink: .stream(continuation))
            }.get()
        } catch {
            throw RelayClientError.from(error, server: core.configuration.server)
        }
        let (id, future) = opened
        continuation.onTermination = { _ in core.eventLoop.execute { core.unsubscribe(id) } }
        let accepted: SubscribeAck
        do {
            accepted = try await future.get()
        } catch {
            throw RelayClientError.from(error, server: core.configuration.server)
        }
        return RelaySubscription(core: core, id: id, stream: stream, filter: filter, durableName: durable,
                                 firstSequence: accepted.firstSequence, notice: accepted.notice, window: max(1, window))
    }

    /// Subscribes with a handler instead of an AsyncSequence, for high
    /// message rates: `onMessage` runs on the connection's event loop (keep it
    /// short, never block) and credit is granted as it returns. `onEnd` runs
    /// once, with nil after ``SubscriptionHandle/cancel()`` or a close, or
    /// with the error that ended the subscription.
    public func subscribe(filter: String, from start: StartPosition = .latest, durable: String? = nil,
                          window: UInt32 = 4096, onMessage: @escaping @Sendable (ReceivedMessage) -> Void,
                          onEnd: @escaping @Sendable (RelayClientError?) -> Void = { _ in }) async throws(RelayClientError) -> SubscriptionHandle {
        let durableName = try Self.validate(filter: filter, start: start, durable: durable)
        let core = connection.core
        let opened: (UInt32, EventLoopFuture<SubscribeAck>)
        do {
            opened = try await core.eventLoop.submit {
                core.subscribe(filter: filter, start: start, durableName: durableName, window: window,
                               sink: .callback(onMessage: onMessage, onEnd: onEnd))
            }.get()
            let accepted = try await opened.1.get()
            return SubscriptionHandle(core: core, id: opened.0, filter: filter, durableName: durable,
                                      firstSequence: accepted.firstSequence, notice: accepted.notice)
        } catch {
            throw RelayClientError.from(error, server: core.configuration.server)
        }
    }

    /// Checks the filter, start position and durable name; returns the durable name or "".
    static func validate(filter: String, start: StartPosition, durable: String?) throws(RelayClientError) -> String {
        do {
            _ = try TopicFilter(filter)
        } catch {
            throw .usage("cannot subscribe to \"\(filter)\": \(error.description)")
        }
        switch start {
        case .sequence(0): throw .usage("a start sequence must be at least 1")
        case .last(0): throw .usage("--from last:N needs N of at least 1")
        default: break
        }
        let durableName = durable ?? ""
        if !durableName.isEmpty {
            let valid = durableName.utf8.count <= 255 && durableName.utf8.allSatisfy {
                ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
                    || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            }
            guard valid else { throw .usage("durable name \"\(durableName)\" must be 1-255 characters of A-Z a-z 0-9 - _") }
        }
        return durableName
    }
}


extension SubscribeAck {
    /// The accepting SUBACK's message (a notice for humans), nil when empty.
    var notice: String? { message.isEmpty ? nil : message }
}
