import CoreMetrics
import DequeModule
import RelayCore
import RelayStore

/// The delivery state of one subscription: which sequence comes next, how
/// much credit the client granted, and a bounded buffer of live messages.
///
/// One mechanism covers the initial replay, a slow subscriber and its
/// catch-up: the live buffer always holds *every* matching message with a
/// sequence above ``bufferValidFrom``. Whatever lies between ``nextSequence``
/// and ``bufferValidFrom`` is read from the store. When the buffer overflows
/// it is dropped and ``bufferValidFrom`` moves to the newest message, so
/// memory stays bounded and the dropped messages are simply read from the store
/// later: no loss, no duplicates, order preserved.
///
/// Owned by the session's event loop; no locking. A class, not a struct:
/// the session keeps it in a dictionary and updates it on every delivery,
/// and a struct copied out of the dictionary made the next append to its
/// buffer copy the whole deque (seen in the fan-out profile).
final class SubscriptionDelivery {
    let id: UInt32
    let filter: TopicFilter
    /// The next sequence that may be delivered; everything below it has been
    /// delivered (or did not match).
    private(set) var nextSequence: UInt64
    /// Messages the client still allows in flight.
    private(set) var credit: UInt64
    /// The buffer holds every matching message with a sequence above this.
    private(set) var bufferValidFrom: UInt64
    private var buffer = Deque<RoutedMessage>()
    private(set) var bufferedBytes = 0
    let bufferLimit: Int
    let bufferByteLimit: Int
    /// Shared by every subscription of the connection, so many subscriptions
    /// that never grant credit cannot each buffer up to their own limits.
    let budget: DeliveryBudget?
    /// How many times the buffer overflowed (a metric: a lagging subscriber).
    private(set) var overflows = 0
    /// A `time` start position (§4.6): messages committed before this time
    /// are passed over (no MSG, no credit used) until the first one at or
    /// after it; nil from then on. The store's time index finds that first
    /// message for a time in the past, but for a time still in the future
    /// the subscription starts at the next sequence, and messages committed
    /// between the SUB and that time must be skipped here.
    private(set) var notBefore: UInt64?

    /// - Parameters:
    ///   - start: the first sequence to deliver.
    ///   - watermark: the highest sequence already fanned out when this
    ///     subscription joined the router: later ones arrive live.
    ///   - notBefore: the time of a `time` start position (ns since the epoch).
    init(id: UInt32, filter: TopicFilter, start: UInt64, watermark: UInt64, credit: UInt64,
         bufferLimit: Int, bufferByteLimit: Int = 64 << 20, budget: DeliveryBudget? = nil, notBefore: UInt64? = nil) {
        self.id = id
        self.notBefore = notBefore
        self.filter = filter
        self.nextSequence = max(start, 1)
        self.bufferValidFrom = watermark
        self.credit = credit
        self.bufferLimit = bufferLimit
        self.bufferByteLimit = bufferByteLimit
        self.budget = budget
    }

    deinit { budget?.release(bufferedBytes) }

    /// True while sequences in `nextSequence...bufferValidFrom` must come from the store.
    var needsReplay: Bool { nextSequence <= bufferValidFrom }

    /// The inclusive upper bound of the next store read.
    var replayThrough: UInt64 { bufferValidFrom }

    var bufferedCount: Int { buffer.count }

    /// True when a delivery turn has something to do for it: credit, and a
    /// replay to read or a buffered message (one the peer refused included).
    /// Only ``grant(_:)``, ``offerLive(_:)`` and ``overflow(through:)`` make
    /// it true outside the turn (``SubscriptionTable``'s queue relies on it).
    var hasWork: Bool { credit > 0 && (needsReplay || !buffer.isEmpty) }

    /// A live message from the router, in commit order.
    ///
    /// Kept small so that it is inlined into the session's delivery loop:
    /// out of line (as it was once the connection budget was added to it,
    /// wave 14), every routed delivery was copied out of its batch for the
    /// call, five references retained and released: +370 instructions per
    /// message in `scripts/icount.sh` (docs/performance.md, "Wave 15").
    /// The rare overflow is the out-of-line ``dropBuffer(readingFromStoreThrough:)``.
    @inline(__always)
    func offerLive(_ message: RoutedMessage) {
        guard message.sequence > bufferValidFrom, message.sequence >= nextSequence else { return }
        let size = message.approximateSize
        guard buffer.count < bufferLimit, bufferedBytes + size <= bufferByteLimit, budget?.take(size) != false else {
            // Too far behind (or the connection's or the broker's buffers
            // are full): forget the buffer; the store has all of it.
            return dropBuffer(readingFromStoreThrough: message.sequence)
        }
        buffer.append(message)
        bufferedBytes += size
    }

    /// Live messages up to `sequence` were not offered (the router's queue
    /// to this session was full): forget the buffer, read through
    /// `sequence` from the store.
    /// Returns whether it dropped the buffer (the store has work for it).
    @discardableResult
    func overflow(through sequence: UInt64) -> Bool {
        guard sequence > bufferValidFrom, sequence >= nextSequence else { return false }
        dropBuffer(readingFromStoreThrough: sequence)
        return true
    }

    /// Forgets the live buffer (giving its bytes back to the connection's
    /// and the broker's budget): messages through `sequence` are read from the store instead.
    @inline(never)
    private func dropBuffer(readingFromStoreThrough sequence: UInt64) {
        buffer.removeAll(keepingCapacity: false)
        budget?.release(bufferedBytes)
        budget?.fallbacks?.increment()
        bufferedBytes = 0
        bufferValidFrom = sequence
        overflows += 1
    }

    /// True when a live message may be written at once, without going
    /// through the buffer: nothing is buffered or to be replayed before it,
    /// credit is left and no start time is pending. The caller then writes
    /// it and calls ``sentLive(_:)``; otherwise it offers it (``offerLive(_:)``).
    func maySendLive(_ message: RoutedMessage) -> Bool {
        buffer.isEmpty && credit > 0 && notBefore == nil && !needsReplay
            && message.sequence > bufferValidFrom && message.sequence >= nextSequence
    }

    /// Records a live message written at once (after ``maySendLive(_:)``).
    func sentLive(_ message: RoutedMessage) {
        nextSequence = message.sequence + 1
        credit -= 1
    }

    func grant(_ more: UInt64) {
        credit = credit &+ more
        if credit < more { credit = .max }  // saturate instead of wrapping
    }

    /// Records messages read from the store for `nextSequence...through`.
    /// `scannedThrough` is the last sequence the read examined (matching or
    /// not); the read must have started at `nextSequence`.
    /// Returns the ones to deliver now (the read is bounded by credit).
    func replayed<Replayed: SequencedMessage>(_ messages: [Replayed], scannedThrough: UInt64) -> [Replayed] {
        var out: [Replayed] = []
        out.reserveCapacity(messages.count)
        _ = replay(messages, scannedThrough: scannedThrough) { out.append($0); return true }
        return out
    }

    /// ``replayed(_:scannedThrough:)`` without the array: hands each message
    /// to deliver now to `deliver`, in order, as it goes. The replay path
    /// writes each MSG straight from the batch this way; an array of the
    /// messages to send copied every message (five references each) and
    /// freed it again (seen in the replay profile). Returns the sequence of
    /// the message `deliver` refused (it did not fit the peer's frame
    /// limit): nothing after it is examined, and the subscription ends.
    func replay<Replayed: SequencedMessage>(_ messages: [Replayed], scannedThrough: UInt64,
                                            deliver: (Replayed) -> Bool) -> UInt64? {
        var handled = 0
        for message in messages where message.sequence >= nextSequence && credit > 0 {
            nextSequence = message.sequence + 1
            handled += 1
            if isBeforeStartTime(message) { continue }
            guard deliver(message) else { return message.sequence }
            credit -= 1
        }
        if credit > 0 || handled == messages.count {
            nextSequence = max(nextSequence, scannedThrough &+ 1)
        }
        return nil
    }

    /// What a replay does with one message its read found.
    enum ReplayStep {
        /// No credit left: stop the read before it.
        case stop
        /// Not for the client (below the next sequence, or before a `time`
        /// start position): go on without sending it.
        case passOver
        /// Write it, then call ``sentReplayed()``.
        case deliver
    }

    /// The per-message step of ``replay(_:scannedThrough:deliver:)`` for a
    /// read that hands messages over one at a time (a visit, which writes
    /// each MSG straight from the stored record): messages come in sequence
    /// order from ``nextSequence`` on. Afterwards ``replayScanned(to:)``.
    func replayStep(sequence: UInt64, timestamp: UInt64) -> ReplayStep {
        guard credit > 0 else { return .stop }
        guard sequence >= nextSequence else { return .passOver }
        nextSequence = sequence + 1
        return isBeforeStartTime(timestamp: timestamp) ? .passOver : .deliver
    }

    /// A message ``replayStep(sequence:timestamp:)`` said to deliver was written.
    func sentReplayed() { credit -= 1 }

    /// The visit stopped at `next` (``ReadProgress/next``): everything below
    /// it was examined, so a sparse filter's gaps are not read again.
    func replayScanned(to next: UInt64) {
        nextSequence = max(nextSequence, next)
    }

    /// Live messages that may be sent now: only when no replay is pending,
    /// and no more than the credit allows.
    func takeLive(max limit: Int = .max) -> [RoutedMessage] {
        guard !needsReplay else { return [] }
        var out: [RoutedMessage] = []
        var released = 0
        while credit > 0, out.count < limit, let first = buffer.first {
            buffer.removeFirst()
            released += first.approximateSize
            if first.sequence < nextSequence { continue }
            nextSequence = first.sequence + 1
            if isBeforeStartTime(first) { continue }
            out.append(first)
            credit -= 1
        }
        // Given back once per call, not per message (the broker's budget is an atomic shared by every loop).
        bufferedBytes -= released
        budget?.release(released)
        return out
    }

    /// True for a message committed before a `time` start position that no
    /// message has reached yet; the first one at or after it ends the check.
    private func isBeforeStartTime(_ message: some SequencedMessage) -> Bool {
        isBeforeStartTime(timestamp: message.timestamp)
    }

    private func isBeforeStartTime(timestamp: UInt64) -> Bool {
        guard let notBefore else { return false }
        if timestamp < notBefore { return true }
        self.notBefore = nil
        return false
    }
}

/// The live-buffer bytes one connection may hold across all its
/// subscriptions (``RoutedMessage/approximateSize`` accounting, which
/// counts a message shared by several subscriptions once per subscription),
/// taken from the broker's ``LiveBufferBudget`` too when there is one.
/// Owned by the session's event loop, like the deliveries; no locking
/// (the shared budget is atomic).
final class DeliveryBudget {
    let limit: Int
    private(set) var used = 0
    /// Every connection's buffers together (`[limits] live_buffer_budget`).
    let shared: LiveBufferBudget?
    /// `relay_slow_subscriber_fallbacks_total`: a buffer dropped, its
    /// subscription reading from the store instead.
    let fallbacks: Counter?

    init(limit: Int, shared: LiveBufferBudget? = nil, fallbacks: Counter? = nil) {
        self.limit = limit
        self.shared = shared
        self.fallbacks = fallbacks
    }

    /// Reserves `bytes` here and in the shared budget; false (nothing
    /// reserved) when that would pass either limit.
    func take(_ bytes: Int) -> Bool {
        guard used + bytes <= limit else { return false }
        if let shared, !shared.take(bytes) { return false }
        used += bytes
        return true
    }

    func release(_ bytes: Int) {
        guard bytes != 0 else { return }
        used -= bytes
        shared?.release(bytes)
    }
}

/// A message with its log sequence: what ``SubscriptionDelivery`` needs to
/// know of a message read from the store or routed live.
protocol SequencedMessage {
    var sequence: UInt64 { get }
    var timestamp: UInt64 { get }
}

extension RoutedMessage: SequencedMessage {}
extension StoredMessage: SequencedMessage {}
