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

/// ``PublishCompletion`` with the `context` value the publish was given
/// (``Publisher/publish(topic:payload:headers:context:onReceipt:)``).
public typealias PublishContextCompletion = @Sendable (Result<PublishReceipt, RelayClientError>, UInt64) -> Void

/// A publish waiting to be sent or answered. A class, not a struct: it moves
/// through the submission queue, the unsent queue and the in-flight table, and
/// each move of a reference is one retain where a copy of the struct was one
/// per field (the client's profile showed those copies as ~5% of its CPU).
/// Reused: once answered, its fields are let go and the object goes back to
/// the connection's spares (``Submissions/spare``) for a later publish, so a
/// steady stream of publishes allocates none (an allocation and a
/// deallocation were ~700 instructions a publish, wave 22).
/// @unchecked Sendable: filled on the caller's thread under the submissions
/// lock, handed to the event loop under that lock, and touched only on that
/// loop afterwards until it is a spare again (under the lock).
final class PendingPublish: @unchecked Sendable {
    /// Assigned on the event loop when the publish is queued.
    var id: UInt64 = 0
    private(set) var topic: String
    /// Nil when the publish has no headers (most do not). A reference, not
    /// a `Headers?`: reading, copying and clearing an optional `Headers`
    /// went through its value witnesses, ~400 instructions a publish
    /// (wave 22); a nil reference is one comparison.
    private(set) var headerBlock: HeaderBlock?
    /// Nil once answered (``clear()``).
    private(set) var payload: ByteBuffer?
    /// Who gets the answer: `completion`, or `contextCompletion` with `context`.
    private var completion: PublishCompletion?
    private var contextCompletion: PublishContextCompletion?
    private var context: UInt64 = 0

    init(topic: String, headers: HeaderBlock?, payload: ByteBuffer, completion: PublishCompletion?,
         contextCompletion: PublishContextCompletion? = nil, context: UInt64 = 0) {
        self.topic = topic
        self.headerBlock = headers
        self.payload = payload
        self.completion = completion
        self.contextCompletion = contextCompletion
        self.context = context
    }

    convenience init(topic: String, headers: Headers, payload: ByteBuffer, completion: @escaping PublishCompletion) {
        self.init(topic: topic, headers: HeaderBlock(headers), payload: payload, completion: completion)
    }

    /// A spare taken for a new publish. The topic is mostly the one it
    /// had: the comparison (the same storage, at once) saves a retain and a
    /// release.
    func refill(topic: String, headers: HeaderBlock?, payload: ByteBuffer, completion: PublishCompletion?,
                contextCompletion: PublishContextCompletion?, context: UInt64) {
        if self.topic != topic { self.topic = topic }
        self.headerBlock = headers
        self.payload = payload
        self.completion = completion
        self.contextCompletion = contextCompletion
        self.context = context
    }

    /// Hands the answer to whoever asked for it.
    func complete(_ result: Result<PublishReceipt, RelayClientError>) {
        if let contextCompletion {
            contextCompletion(result, context)
        } else {
            completion?(result)
        }
    }

    /// Lets go of the payload, the headers and the completion (the caller's
    /// buffer is its own again: a reused payload is not copied on write).
    func clear() {
        payload = nil
        headerBlock = nil
        completion = nil
        contextCompletion = nil
    }
}

/// A publish's encoded headers (at least one).
final class HeaderBlock: Sendable {
    let headers: Headers

    /// Nil for no headers.
    init?(_ headers: Headers?) {
        guard let headers, headers.count > 0 else { return nil }
        self.headers = headers
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
    /// Answered publishes to reuse (``PendingPublish``).
    var spare: [PendingPublish] = []
    /// The last topic that passed the grammar check: a publisher mostly
    /// repeats one, and checking it again cost ~400 instructions a publish;
    /// comparing with the same String is a few (wave 9). Kept here since
    /// wave 22, so the comparison shares the submission's lock.
    var checkedTopic: String?

    /// Spares kept at most (publishes answered beyond these are deallocated).
    static let spareLimit = 4096
}

/// What ``ConnectionCore/submitPublish(topic:headers:payload:completion:contextCompletion:context:topicChecked:)`` did.
enum PublishSubmission {
    case submitted
    /// The topic is not the last one checked: check it, then submit with `topicChecked`.
    case checkTopic
}

extension ConnectionCore {
    /// Hands publishes to the event loop. Thread-safe; many calls between two
    /// runs of the loop become one batch, written with one flush.
    func submit(_ items: some Collection<Submission>) {
        let schedule = submissionLock.withLock { () -> Bool in
            submissionState.items.append(contentsOf: items)
            if submissionState.scheduled { return false }
            submissionState.scheduled = true
            return true
        }
        if schedule { eventLoop.execute { self.drainSubmissions() } }
    }

    func submit(_ item: Submission) {
        submit(CollectionOfOne(item))
    }

    /// Hands one publish to the event loop, in a spare ``PendingPublish``
    /// when there is one, under one lock with the topic check's cache:
    /// `.checkTopic`, submitting nothing, when `topic` is not the last one
    /// that passed (`topicChecked` false). Thread-safe.
    func submitPublish(topic: String, headers: HeaderBlock?, payload: ByteBuffer, completion: PublishCompletion?,
                       contextCompletion: PublishContextCompletion? = nil, context: UInt64 = 0,
                       topicChecked: Bool) -> PublishSubmission {
        submissionLock.lock()
        if topicChecked {
            submissionState.checkedTopic = topic
        } else if submissionState.checkedTopic != topic {
            submissionLock.unlock()
            return .checkTopic
        }
        if let spare = submissionState.spare.popLast() {
            spare.refill(topic: topic, headers: headers, payload: payload, completion: completion,
                         contextCompletion: contextCompletion, context: context)
            submissionState.items.append(.publish(spare))
        } else {
            submissionState.items.append(.publish(PendingPublish(topic: topic, headers: headers, payload: payload,
                                                                 completion: completion, contextCompletion: contextCompletion,
                                                                 context: context)))
        }
        let schedule = !submissionState.scheduled
        submissionState.scheduled = true
        submissionLock.unlock()
        if schedule { eventLoop.execute { self.drainSubmissions() } }
        return .submitted
    }

    /// True when `topic` is the last one that passed the grammar check.
    func isCheckedTopic(_ topic: String) -> Bool {
        submissionLock.withLock { submissionState.checkedTopic == topic }
    }

    /// Remembers `topic` as the last one that passed the grammar check.
    func noteCheckedTopic(_ topic: String) {
        submissionLock.withLock { submissionState.checkedTopic = topic }
    }

    /// An answered publish goes back to the spares (event loop only): its
    /// payload, headers and completion are let go now, the object is handed
    /// to the submitting side at the next drain.
    func recycle(_ pending: consuming PendingPublish) {
        var pending = pending
        guard isKnownUniquelyReferenced(&pending), answered.count < Submissions.spareLimit else { return }
        pending.clear()
        answered.append(consume pending)
    }

    private func drainSubmissions() {
        // The batch and the submitters' next array swap (no copy, no new
        // array per batch); the answered publishes become spares.
        submissionLock.withLock {
            submissionState.scheduled = false
            swap(&submissionState.items, &draining)
            if !answered.isEmpty {
                if submissionState.spare.isEmpty {
                    swap(&submissionState.spare, &answered)
                } else {
                    let room = max(0, Submissions.spareLimit - submissionState.spare.count)
                    submissionState.spare.append(contentsOf: answered.prefix(room))
                    answered.removeAll(keepingCapacity: true)
                }
            }
        }
        defer { draining.removeAll(keepingCapacity: true) }
        if case .closed(let error) = phase.state {
            let failure = error ?? RelayClientError.closed
            for item in draining {
                switch item {
                case .publish(let p): p.complete(.failure(failure))
                case .barrier(let promise): promise.fail(failure)
                }
            }
            return
        }
        for item in draining {
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
            // A queued record always holds its payload: only answered ones are cleared.
            guard let payload = next.payload else {
                next.complete(.failure(.closed))
                continue
            }
            if payload.readableBytes > session.maxPayload {
                next.complete(.failure(.usage("the message for \(next.topic) is \(payload.readableBytes) bytes; "
                    + "the broker accepts at most \(session.maxPayload) bytes per message")))
                continue
            }
            // Straight into the output, without a Frame around the fields (PublishEncoding.swift).
            do {
                try outbound.writePublish(publishID: next.id, topic: next.topic, headers: next.headerBlock?.headers, payload: payload,
                                          maxFrameSize: phase.frameLimit)
            } catch {
                next.complete(.failure(.usage("the message for \(next.topic) does not fit in one frame of "
                    + "\(session.maxFrameSize) bytes; send a smaller payload or fewer headers")))
                continue
            }
            inFlight.insert(next)
        }
        checkDrained()
    }

    func publishAcknowledged(_ ack: PublishAck) {
        guard let pending = inFlight.remove(ack.publishID) else { return }
        pending.complete(.success(PublishReceipt(publishID: ack.publishID, sequence: ack.sequence,
                                                   timestamp: ack.timestamp, duplicate: ack.duplicate)))
        recycle(pending)
    }

    func publishRefused(_ error: PublishError) {
        guard let pending = inFlight.remove(error.publishID) else { return }
        pending.complete(.failure(.broker(rawCode: error.code, message: error.message,
                                            operation: "publish to \(pending.topic)")))
        recycle(pending)
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
        for p in pending { p.complete(.failure(error)) }
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
