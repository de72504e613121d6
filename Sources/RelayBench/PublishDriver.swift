import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RelayClient

/// What one publisher achieved.
public struct PublishOutcome: Sendable {
    public var publisher: UInt32
    public var sent = 0
    public var acked = 0
    public var failed = 0
    public var firstError: String?
    /// Monotonic time of the first publish and of the last acknowledgement.
    public var firstSend: UInt64 = 0
    public var lastAck: UInt64 = 0
    public var ackLatency = LatencyRecorder()
    public var timedOut = false
}

/// Publishes `count` messages keeping at most `window` unacknowledged.
///
/// Closed loop (`rate` 0, the default): the first `window` go out at once,
/// then each receipt releases the next publish, like the peers' load
/// generators. Receipts run on the connection's event loop; everything
/// published between two turns of that loop goes out in one write.
///
/// Open loop (`rate` > 0): message i is due at start + i/rate and goes out
/// on its own, from a pacing thread, whatever the receipts do (the window
/// still caps what is in flight). Latency is measured from the due time, not
/// from when the message actually left, so a sender that falls behind counts
/// against the broker instead of hiding its queueing (coordinated omission).
final class PublishDriver: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock`.
    private let publisher: Publisher
    private let topic: String
    private let count: Int
    private let window: Int
    private let size: Int
    private let publisherID: UInt32
    /// Messages per second for the open loop; 0 for the closed loop.
    private let rate: Double
    private let lock = NIOLock()
    private var outcome: PublishOutcome
    private var stopped = false
    /// One sender at a time (see `sendMore`).
    private var sending = false
    private var sendAgain = false
    private let done = OneShot<PublishOutcome>()
    /// Payload buffers, reused; only the one sender at a time touches it
    /// (`sending`, or the pacing thread).
    private var payloads: BenchPayload.Ring
    /// The one receipt handler of every publish, the send time as its
    /// context: a closure per publish (capturing the send time) was an
    /// allocation and its release per message (wave 22). Weak: held
    /// strongly, the driver would hold itself through its handler.
    private var onReceipt: PublishContextCompletion = { _, _ in }

    init(publisher: Publisher, id: UInt32, topic: String, count: Int, window: Int, size: Int, rate: Double = 0) {
        self.publisher = publisher
        self.rate = rate
        self.topic = topic
        self.count = count
        self.window = max(1, window)
        self.size = size
        self.publisherID = id
        self.outcome = PublishOutcome(publisher: id)
        self.payloads = BenchPayload.Ring(slots: min(max(1, count), 2 * max(1, window)), size: size)
        self.onReceipt = { [weak self] result, sentAt in self?.completed(sentAt: sentAt, result) }
    }

    /// Publishes everything and waits for the last receipt (or `stop()`).
    func run() async -> PublishOutcome {
        if count == 0 { return outcome }
        if rate > 0 {
            let thread = Thread { [self] in self.sendPaced() }
            thread.name = "bench-pacer-\(publisherID)"
            thread.start()
        } else {
            sendMore()
        }
        return await done.wait()
    }

    /// Ends the run now (the deadline passed); reports what was acknowledged.
    func stop() {
        let snapshot: PublishOutcome = lock.withLock {
            stopped = true
            outcome.timedOut = true
            return outcome
        }
        done.complete(snapshot)
    }

    /// Publishes what the window allows, in counter order. Receipts call this
    /// on the event loop while the first burst may still be going out from the
    /// caller's task: only one caller sends at a time (the others leave a
    /// note and the sender loops), so counter N+1 never overtakes N on the wire.
    private func sendMore() {
        if let range = lock.withLock({ claimLocked() }) { send(range) }
    }

    /// With the lock held: the next counters to send, now this caller's to
    /// send; nil when the window is full, the run is over, or another caller
    /// is sending (it is told to look again).
    private func claimLocked() -> Range<Int>? {
        if sending {
            sendAgain = true
            return nil
        }
        guard !stopped, outcome.firstError == nil else { return nil }
        let open = outcome.sent - outcome.acked - outcome.failed
        let n = min(window - open, count - outcome.sent)
        guard n > 0 else { return nil }
        let start = outcome.sent
        outcome.sent += n
        if start == 0 { outcome.firstSend = BenchClock.now() }
        sending = true
        return start..<(start + n)
    }

    /// Publishes the claimed `range`, then whatever the receipts freed
    /// meanwhile (`sendAgain`), until nothing more may go.
    private func send(_ claimed: Range<Int>) {
        let id = publisherID, publisher = self.publisher, topic = self.topic, onReceipt = self.onReceipt
        var range = claimed
        while true {
            for counter in range {
                let sentAt = BenchClock.now()
                let payload = payloads.make(.init(publisher: id, counter: UInt64(counter), sentAt: sentAt))
                publisher.publish(topic: topic, payload: payload, context: sentAt, onReceipt: onReceipt)
            }
            let next: Range<Int>? = lock.withLock {
                sending = false
                guard sendAgain else { return nil }
                sendAgain = false
                return claimLocked()
            }
            guard let next else { return }
            range = next
        }
    }

    /// The open loop: each message at its due time, on this (pacing) thread.
    private func sendPaced() {
        Self.wakeOnTime()
        let interval = 1e9 / rate
        let start = BenchClock.now()
        for counter in 0..<count {
            let due = start &+ UInt64(Double(counter) * interval)
            Self.sleep(until: due)
            // Wait while the window is full (the broker is behind by `window` messages).
            while true {
                let go: Bool? = lock.withLock {
                    guard !stopped, outcome.firstError == nil else { return nil }
                    guard outcome.sent - outcome.acked - outcome.failed < window else { return false }
                    if outcome.sent == 0 { outcome.firstSend = due }
                    outcome.sent += 1
                    return true
                }
                guard let go else { return }
                if go { break }
                Self.sleep(until: BenchClock.now() &+ 50_000)
            }
            let payload = payloads.make(.init(publisher: publisherID, counter: UInt64(counter), sentAt: due))
            publisher.publish(topic: topic, payload: payload, context: due, onReceipt: onReceipt)
        }
    }

    /// Asks the kernel to wake this thread at its deadline rather than up to
    /// 50 µs later (Linux's default timer slack for a normal thread, which
    /// `nanosleep` may add to every sleep): at 10,000 msg/s that is half an
    /// interval, and a late wake-up sends two messages together. Latency
    /// still counts from each message's due time; this only keeps the
    /// client's own lateness out of it. The slack is per thread and only
    /// /proc/<tid>/timerslack_ns sets it (/proc/thread-self has no such
    /// file). Best effort: where that fails the default slack stays.
    static func wakeOnTime() {
        // /proc/thread-self links to "<pid>/task/<tid>": the last part names this thread.
        var link = [CChar](repeating: 0, count: 64)
        let length = readlink("/proc/thread-self", &link, 63)
        guard length > 0,
              let tid = String(decoding: link.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                  .split(separator: "/").last else { return }
        let fd = open("/proc/\(tid)/timerslack_ns", O_WRONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = "1".withCString { write(fd, $0, 1) }
    }

    private static func sleep(until deadline: UInt64) {
        let now = BenchClock.now()
        guard deadline > now else { return }
        let wait = deadline - now
        var request = timespec(tv_sec: Int(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
    }

    /// A receipt (event loop): counted and its latency recorded; in the
    /// closed loop the publishes it frees are claimed under the same lock.
    private func completed(sentAt: UInt64, _ result: Result<PublishReceipt, RelayClientError>) {
        let now = BenchClock.now()
        // Small values out of the lock: an optional PublishOutcome (its
        // histograms inline) was copied out on every receipt (wave 22).
        let (finished, range): (Bool, Range<Int>?) = lock.withLock {
            switch result {
            case .success:
                outcome.acked += 1
                outcome.ackLatency.record(nanoseconds: now &- sentAt)
                outcome.lastAck = now
            case .failure(let error):
                outcome.failed += 1
                if outcome.firstError == nil { outcome.firstError = error.message }
            }
            let answered = outcome.acked + outcome.failed
            if stopped { return (false, nil) }
            if answered == count || (outcome.firstError != nil && answered == outcome.sent) {
                stopped = true
                return (true, nil)
            }
            return (false, rate == 0 ? claimLocked() : nil)
        }
        if finished {
            // Every publish is answered: nothing changes the outcome any more.
            done.complete(lock.withLock { outcome })
        } else if let range {
            send(range)
        }
    }
}
