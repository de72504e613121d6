import CNATS
import Foundation
import NIOCore
import RelayStore

/// The live tail (``SharedMessageLog``): an ordered consumer of the stream on
/// the current connection. A renewal moves it to the new connection
/// (``TailFollower/move(to:stream:subject:)``) from the message after the
/// last one the old consumer handled, once the old consumer's handler has
/// returned for the last time: nothing is delivered twice, skipped or out of
/// order across the move.
extension JetStreamMessageLog {
    public func stopTail() {
        tail.stop()
    }

    public func startTail(after sequence: UInt64, deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError) {
        try startTail(after: sequence, skip: { _, _ in false }, deliver: deliver)
    }

    /// `skip` sees each Relay record's sequence and payload size, read from
    /// the record's length fields (no strings built); a record it skips is not
    /// decoded. A foreign record is never offered to `skip` (it is counted).
    public func startTail(after sequence: UInt64, skip: @escaping @Sendable (_ sequence: UInt64, _ payloadBytes: Int) -> Bool,
                          deliver: @escaping @Sendable ([StoredMessage]) -> Void) throws(StoreError) {
        let foreign = foreignRecords
        let prefixLength = settings.subjectPrefix.utf8.count + 1
        let handlers = TailFollower.Handlers(
            // `skip` is asked with the record's bytes in place: a skipped
            // message is neither copied nor decoded.
            skip: { sequence, bytes in JetStreamRecord.payloadLength(ofBytes: bytes).map { skip(sequence, $0) } ?? false },
            deliver: { sequence, subject, data in
                do {
                    let topic = subject.map { Self.topic(ofSubject: $0, prefixLength: prefixLength) }
                    deliver([try JetStreamRecord.decode(data, sequence: sequence, topic: topic)])
                } catch {
                    foreign.skipped(sequence: sequence, reason: error)
                }
            })
        do {
            // The connection is read under the follower's lock: a start racing a
            // renewal opens on the old connection before the move (which moves it)
            // or on the new one after it, never on the old one after the move.
            try tail.start(after: sequence, on: { self.nats }, stream: settings.stream, subject: "\(settings.subjectPrefix).>", handlers: handlers)
        } catch {
            throw Self.storeError(error)
        }
    }
}

/// Where the live tail runs and how far it got. `lock` orders start, stop and
/// move; each consumer's `progress` is written by nats.c's delivery thread.
final class TailFollower: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`; a `HandledSequence` has its own.
    struct Handlers {
        var skip: @Sendable (UInt64, UnsafeRawBufferPointer) -> Bool
        var deliver: @Sendable (UInt64, String?, ByteBuffer) -> Void
    }

    private let lock = NSLock()
    private var connection: NATSConnection?
    private var handlers: Handlers?
    /// The open consumer's progress: one object per consumer, so a handler
    /// call of a closed one that is still finishing cannot move a later
    /// consumer's position.
    private var progress: HandledSequence?

    /// The stream sequence of the last message one consumer handled
    /// (delivered, skipped or foreign), set on nats.c's delivery thread.
    private final class HandledSequence: @unchecked Sendable {
        // @unchecked: `handled` is guarded by `lock`.
        private let lock = NSLock()
        private var handled: UInt64
        init(_ handled: UInt64) { self.handled = handled }
        var value: UInt64 {
            get { lock.withLock { handled } }
            set { lock.withLock { handled = newValue } }
        }
    }

    /// How long a move waits for the old consumer's last handler call.
    static let handoverWaitMs: Int64 = 5_000

    /// Opens the tail on `current()`, read once the follower's lock is held.
    func start(after sequence: UInt64, on current: () -> NATSConnection, stream: String, subject: String,
               handlers: Handlers) throws(NATSError) {
        lock.lock()
        defer { lock.unlock() }
        guard connection == nil else { throw NATSError("subscribe to \(subject): the tail is already open", NATS_ILLEGAL_STATE) }
        let nats = current()
        progress = try open(on: nats, after: sequence, stream: stream, subject: subject, handlers: handlers)
        (connection, self.handlers) = (nats, handlers)
    }

    func stop() {
        lock.withLock {
            connection?.unsubscribeOrdered()
            (connection, handlers, progress) = (nil, nil, nil)
        }
    }

    /// Moves an open tail to `fresh`: closes the consumer on the old
    /// connection, waits for its handler's last call, and opens one on
    /// `fresh` from the message after the last one handled. Nothing when no
    /// tail is open. When `fresh` refuses, the tail is opened again where it
    /// was (that connection still works until its next reconnect) and the
    /// error is returned.
    func move(to fresh: NATSConnection, stream: String, subject: String) -> NATSError? {
        lock.lock()
        defer { lock.unlock() }
        guard let old = connection, let handlers, let handled = progress, old !== fresh else { return nil }
        let drained = old.unsubscribeOrdered(waitMs: Self.handoverWaitMs)
        // Read after the old consumer's last handler call (when `drained`).
        let last = handled.value
        (connection, progress) = (nil, nil)
        do {
            progress = try open(on: fresh, after: last, stream: stream, subject: subject, handlers: handlers)
            connection = fresh
            return drained ? nil : NATSError("move the live tail: the old consumer's handler did not return in time", NATS_TIMEOUT)
        } catch {
            if let reopened = try? open(on: old, after: last, stream: stream, subject: subject, handlers: handlers) {
                (connection, progress) = (old, reopened)
            }
            return error
        }
    }

    /// Opens a consumer from the message after `sequence`; returns its progress.
    private func open(on nats: NATSConnection, after sequence: UInt64, stream: String, subject: String,
                      handlers: Handlers) throws(NATSError) -> HandledSequence {
        let progress = HandledSequence(sequence)
        try nats.subscribeOrdered(stream: stream, subject: subject, startSequence: sequence + 1, skip: { sequence, bytes in
            progress.value = sequence
            return handlers.skip(sequence, bytes)
        }, deliver: handlers.deliver)
        return progress
    }
}
