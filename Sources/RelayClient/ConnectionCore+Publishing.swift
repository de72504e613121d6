import DequeModule
import NIOCore
import RelayWire

/// The broker's answer to one publish: it is durably stored.
public struct PublishReceipt: Sendable, Hashable {
    /// The id this client gave the publish (strictly increasing per session).
    public var publishID: UInt64
    /// The message's position in the broker's log.
    public var sequence: UInt64
    /// Commit time, nanoseconds since the Unix epoch.
    public var timestamp: UInt64
    /// True when the broker had already stored this publish (a retry after a
    /// lost PUBACK): `sequence` and `timestamp` are the original's.
    public var duplicate: Bool

    /// A receipt with these values (the library makes them from PUBACK).
    public init(publishID: UInt64, sequence: UInt64, timestamp: UInt64, duplicate: Bool) {
        self.publishID = publishID
        self.sequence = sequence
        self.timestamp = timestamp
        self.duplicate = duplicate
    }
}

/// Called once per publish, on the connection's event loop: keep it short.
public typealias PublishCompletion = @Sendable (Result<PublishReceipt, RelayClientError>) -> Void

/// A publish waiting to be sent or answered. A class, not a struct: it moves
/// through the submission queue, the unsent queue and the in-flight table, and
/// each move of a reference is one retain where a copy of the struct was one
/// per field (the client's profile showed those copies as ~5% of its CPU).
/// @unchecked Sendable: made on the caller's thread, handed to the event loop
/// under the submissions lock, and touched only on that loop afterwards.
final class PendingPublish: @unchecked Sendable {
    /// Assigned on the event loop when the publish is queued.
    var id: UInt64 = 0
    let topic: String
    let headers: Headers
    let payload: ByteBuffer
    let completion: PublishCompletion

    init(topic: String, headers: Headers, payload: ByteBuffer, completion: @escaping PublishCompletion) {
        self.topic = topic
        self.headers = headers
        self.payload = payload
        self.completion = completion
    }
}

enum Submission {
    case publish(PendingPublish)
    /// Completes when everything submitted before it has been answered.
    case barrier(EventLoopPromise<Void>)
}

/// Publishes handed over from any thread, drained on the event loop in batches.
struct Submissions {
    var items: [Submission] = []
    var scheduled = false
}

extension ConnectionCore {
    /// Hands publishes to the event loop. Thread-safe; many calls between two
    /// runs of the loop become one batch, written with one flush.
    func submit(_ items: some Collection<Submission>) {
        let schedule = submissions.withLockedValue { state -> Bool in
            state.items.append(contentsOf: items)
            if state.scheduled { return false }
            state.scheduled = true
            return true
        }
        if schedule { eventLoop.execute { self.drainSubmissions() } }
    }

    func submit(_ item: Submission) {
        submit(CollectionOfOne(item))
    }

    private func drainSubmissions() {
        let items = submissions.withLockedValue { state -> [Submission] in
            state.scheduled = false
            defer { state.items.removeAll(keepingCapacity: true) }
            return state.items
        }
        if case .closed(let error) = phase.state {
            let failure = error ?? RelayClientError.closed
            for item in items {
                switch item {
                case .publish(let p): p.completion(.failure(failure))
                case .barrier(let promise): promise.fail(failure)
                }
            }
            return
        }
        for item in items {
            switch item {
            case .publish(let p):
                p.id = nextPublishID
                nextPublishID += 1
                unsent.append(p)
            case .barrier(let promise):
                drainWaiters.append(promise)
            }
        }
        pumpPublishes()
        flushOutbound()
        checkDrained()
    }

    /// Sends unsent publishes while the in-flight window has room.
    func pumpPublishes() {
        guard let session else { return }
        let window = max(1, min(configuration.maxInFlight, session.maxInFlight > 0 ? session.maxInFlight : Int.max))
        while inFlight.count < window, let next = unsent.popFirst() {
            if next.payload.readableBytes > session.maxPayload {
                next.completion(.failure(.usage("the message for \(next.topic) is \(next.payload.readableBytes) bytes; "
                    + "the broker accepts at most \(session.maxPayload) bytes per message")))
                continue
            }
            // Straight into the output, without a Frame around the fields (PublishEncoding.swift).
            do {
                try outbound.writePublish(publishID: next.id, topic: next.topic, headers: next.headers, payload: next.payload,
                                          maxFrameSize: phase.frameLimit)
            } catch {
                next.completion(.failure(.usage("the message for \(next.topic) does not fit in one frame of "
                    + "\(session.maxFrameSize) bytes; send a smaller payload or fewer headers")))
                continue
            }
            inFlight.insert(next)
        }
        checkDrained()
    }

    func publishAcknowledged(_ ack: PublishAck) {
        guard let pending = inFlight.remove(ack.publishID) else { return }
        pending.completion(.success(PublishReceipt(publishID: ack.publishID, sequence: ack.sequence,
                                                   timestamp: ack.timestamp, duplicate: ack.duplicate)))
    }

    func publishRefused(_ error: PublishError) {
        guard let pending = inFlight.remove(error.publishID) else { return }
        pending.completion(.failure(.broker(rawCode: error.code, message: error.message,
                                            operation: "publish to \(pending.topic)")))
    }

    /// The connection dropped: everything in flight goes back to the front of
    /// the queue, in id order, to be re-sent with the same ids (the broker
    /// answers a publish it already stored as a duplicate).
    func connectionLostRequeue() {
        if !inFlight.isEmpty {
            let resend = inFlight.removeAll()
            resentPublishCount += resend.count
            unsent.prepend(contentsOf: resend)
        }
        markSubscriptionsDetached()
    }

    func failAllPublishes(_ error: RelayClientError) {
        let pending = inFlight.removeAll() + Array(unsent)
        unsent.removeAll()
        for p in pending { p.completion(.failure(error)) }
        let waiters = drainWaiters
        drainWaiters.removeAll()
        for waiter in waiters { waiter.fail(error) }
    }

    func checkDrained() {
        guard !drainWaiters.isEmpty, unsent.isEmpty, inFlight.isEmpty else { return }
        let waiters = drainWaiters
        drainWaiters.removeAll()
        for waiter in waiters { waiter.succeed(()) }
    }
}
