import NIOCore
import RelayCore
import RelayWire

/// One message to publish, for ``Publisher/publish(batch:)``.
public struct OutgoingMessage: Sendable {
    /// The topic, dot-separated tokens (`orders.eu.created`); the broker
    /// checks it against this client's publish permissions.
    public var topic: String
    /// The bytes to store and deliver, unchanged.
    public var payload: ByteBuffer
    /// Key-value headers delivered with the message, in this order.
    public var headers: [HeaderField]

    /// A message with a payload already in a buffer.
    public init(topic: String, payload: ByteBuffer, headers: [HeaderField] = []) {
        self.topic = topic
        self.payload = payload
        self.headers = headers
    }

    /// A message with a payload of bytes.
    public init(topic: String, payload: some Sequence<UInt8>, headers: [HeaderField] = []) {
        self.init(topic: topic, payload: ByteBuffer(bytes: payload), headers: headers)
    }

    /// A message with a UTF-8 text payload.
    public init(topic: String, text: String, headers: [HeaderField] = []) {
        self.init(topic: topic, payload: ByteBuffer(string: text), headers: headers)
    }
}

/// Publishes messages and reports when the broker has durably stored each.
///
/// Publishes are pipelined: up to the in-flight window (at most the
/// broker's `max_in_flight`) are on the wire at once, and everything handed
/// over between two turns of the event loop goes out in one write. After a
/// reconnect, publishes without an answer are re-sent with the same publish
/// id in the same producer session, so a lost PUBACK never stores a message
/// twice (the receipt says ``PublishReceipt/duplicate``).
///
/// ```swift
/// let publisher = try await Publisher.connect(configuration)
/// let receipt = try await publisher.publish(topic: "orders.created", payload: Array("hello".utf8))
/// print("stored as", receipt.sequence)
/// ```
public final class Publisher: Sendable {
    /// The connection publishes go through (its ``RelayConnection/states``
    /// report reconnects).
    public let connection: RelayConnection
    /// Uses an existing connection (shared with a ``Subscriber`` if you like).
    public init(connection: RelayConnection) {
        self.connection = connection
    }

    /// Connects and waits for WELCOME.
    public static func connect(_ configuration: RelayClientConfiguration) async throws(RelayClientError) -> Publisher {
        Publisher(connection: try await RelayConnection.connect(configuration))
    }

    /// Publishes one message and returns once the broker committed it.
    /// Concurrent calls are pipelined.
    ///
    /// - Parameters:
    ///   - topic: where to publish; must be within this identity's publish grants.
    ///   - payload: the message body, delivered unchanged.
    ///   - headers: key-value pairs delivered with the message.
    /// - Returns: the message's sequence and commit time in the broker's log.
    /// - Throws: ``RelayClientError``: the topic is invalid or not allowed
    ///   (`not_authorized`), the payload is larger than the broker accepts,
    ///   the store is full, or the connection closed for good first.
    public func publish(topic: String, payload: ByteBuffer, headers: [HeaderField] = []) async throws(RelayClientError) -> PublishReceipt {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<PublishReceipt, RelayClientError>, Never>) in
            publish(topic: topic, payload: payload, headers: headers) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Publishes bytes; see ``publish(topic:payload:headers:)-(_,ByteBuffer,_)``.
    public func publish(topic: String, payload: some Sequence<UInt8>, headers: [HeaderField] = []) async throws(RelayClientError) -> PublishReceipt {
        try await publish(topic: topic, payload: ByteBuffer(bytes: payload), headers: headers)
    }

    /// Publishes UTF-8 text.
    public func publish(topic: String, text: String, headers: [HeaderField] = []) async throws(RelayClientError) -> PublishReceipt {
        try await publish(topic: topic, payload: ByteBuffer(string: text), headers: headers)
    }

    /// Fire and callback, for high throughput: returns at once; `onReceipt`
    /// runs on the connection's event loop when the broker answered (keep it
    /// short). The queue is not bounded: pace yourself with ``flush()`` or
    /// by counting receipts.
    public func publish(topic: String, payload: ByteBuffer, headers: [HeaderField] = [],
                        onReceipt: @escaping PublishCompletion) {
        submit(topic: topic, payload: payload, headers: headers, completion: onReceipt, contextCompletion: nil, context: 0)
    }

    /// Fire and callback like ``publish(topic:payload:headers:onReceipt:)``,
    /// for a pipeline that gives every publish the same handler: `context`
    /// (any value: an index, a send time) comes back with the answer, so the
    /// handler is made once, not a closure (an allocation) per publish.
    /// `onReceipt` runs on the connection's event loop; keep it short.
    public func publish(topic: String, payload: ByteBuffer, headers: [HeaderField] = [], context: UInt64,
                        onReceipt: @escaping PublishContextCompletion) {
        submit(topic: topic, payload: payload, headers: headers, completion: nil, contextCompletion: onReceipt, context: context)
    }

    private func submit(topic: String, payload: ByteBuffer, headers: [HeaderField], completion: PublishCompletion?,
                        contextCompletion: PublishContextCompletion?, context: UInt64) {
        func fail(_ error: RelayClientError) {
            if let contextCompletion { contextCompletion(.failure(error), context) } else { completion?(.failure(error)) }
        }
        let encoded: HeaderBlock?
        do throws(RelayClientError) {
            encoded = try Self.encode(headers, topic: topic)
        } catch {
            fail(error)
            return
        }
        // One lock for the topic cache and the hand-over; the grammar check
        // only for a topic that is not the last one checked.
        let core = connection.core
        if case .submitted = core.submitPublish(topic: topic, headers: encoded, payload: payload, completion: completion,
                                                contextCompletion: contextCompletion, context: context,
                                                topicChecked: false) { return }
        do throws(RelayClientError) {
            try Self.checkTopic(topic)
        } catch {
            fail(error)
            return
        }
        _ = core.submitPublish(topic: topic, headers: encoded, payload: payload, completion: completion,
                               contextCompletion: contextCompletion, context: context, topicChecked: true)
    }

    /// Publishes many messages in one hand-over (one write for the lot) and
    /// returns each one's outcome, in order.
    public func publish(batch messages: [OutgoingMessage]) async -> [Result<PublishReceipt, RelayClientError>] {
        guard !messages.isEmpty else { return [] }
        let collector = BatchCollector(count: messages.count)
        return await withCheckedContinuation { (continuation: CheckedContinuation<[Result<PublishReceipt, RelayClientError>], Never>) in
            collector.onDone = { continuation.resume(returning: $0) }
            var submissions: [Submission] = []
            submissions.reserveCapacity(messages.count)
            for (index, message) in messages.enumerated() {
                let completion: PublishCompletion = { collector.set(index, $0) }
                do throws(RelayClientError) {
                    let headers = try check(topic: message.topic, headers: message.headers)
                    submissions.append(.publish(PendingPublish(topic: message.topic, headers: headers, payload: message.payload,
                                                               completion: completion)))
                } catch {
                    completion(.failure(error))
                }
            }
            connection.core.submit(submissions)
        }
    }

    /// Waits until every publish handed over so far has been answered.
    public func flush() async throws(RelayClientError) {
        let core = connection.core
        let promise = core.eventLoop.makePromise(of: Void.self)
        core.submit(.barrier(promise))
        do {
            try await promise.futureResult.get()
        } catch {
            throw RelayClientError.from(error, server: core.configuration.server)
        }
    }

    /// Closes the underlying connection (see ``RelayConnection/close()``).
    public func close() async {
        await connection.close()
    }

    /// Checks what can be checked before sending: the topic grammar and the
    /// headers; returns the encoded headers, nil for none. Typed throws, not
    /// a `Result`: the `Result<PendingPublish, …>` it replaced was copied and
    /// destroyed twice per publish.
    private func check(topic: String, headers fields: [HeaderField]) throws(RelayClientError) -> HeaderBlock? {
        let core = connection.core
        if !core.isCheckedTopic(topic) {
            try Self.checkTopic(topic)
            core.noteCheckedTopic(topic)
        }
        return try Self.encode(fields, topic: topic)
    }

    /// The topic's grammar, and no reserved topic.
    private static func checkTopic(_ topic: String) throws(RelayClientError) {
        let checked: Topic
        do {
            checked = try Topic(topic)
        } catch {
            throw .usage("cannot publish to \"\(topic)\": \(error.description)")
        }
        if checked.isReserved {
            throw .usage("cannot publish to \"\(topic)\": topics starting with '_' are reserved for the broker")
        }
    }

    /// The headers encoded (in a ``HeaderBlock``), nil for none. A refusal of the headers reports
    /// the topic's error instead when the topic is wrong too (the topic was
    /// checked first before wave 22, and still wins).
    private static func encode(_ fields: [HeaderField], topic: String) throws(RelayClientError) -> HeaderBlock? {
        if fields.isEmpty { return nil }
        let headers: Headers
        do {
            headers = try Headers(fields)
        } catch {
            try checkTopic(topic)
            throw .usage("cannot publish to \"\(topic)\": \(error.message)")
        }
        guard headers.keysAreValid else {
            try checkTopic(topic)
            throw .usage("cannot publish to \"\(topic)\": a header key must be 1-255 characters of A-Z a-z 0-9 - _ .")
        }
        return HeaderBlock(headers)
    }
}

/// Collects a batch's results (completions run on the event loop, one at a time).
private final class BatchCollector: @unchecked Sendable {
    // @unchecked: `set` runs only on the connection's event loop, or on the
    // caller's thread before the batch is submitted; never concurrently.
    var results: [Result<PublishReceipt, RelayClientError>?]
    var remaining: Int
    var onDone: (([Result<PublishReceipt, RelayClientError>]) -> Void)?

    init(count: Int) {
        results = Array(repeating: nil, count: count)
        remaining = count
    }

    func set(_ index: Int, _ result: Result<PublishReceipt, RelayClientError>) {
        guard results[index] == nil else { return }
        results[index] = result
        remaining -= 1
        if remaining == 0, let onDone {
            self.onDone = nil
            onDone(results.map { $0 ?? .failure(RelayClientError.closed) })
        }
    }
}
