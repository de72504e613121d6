import Dispatch
import Logging
import NIOConcurrencyHelpers
import RelayStore

/// A shared log's tail, open only while this edge needs it: from the first
/// subscription until `idle` after the last one ended. An edge that only
/// publishes then costs the log's service no delivery per message (with
/// JetStream, an ordered consumer that sends every message of the stream
/// back to every edge: docs/cluster.md, "Live delivery across edges").
///
/// The tail reopens after the log's last sequence, asked of the service
/// itself, and the router's watermark is raised to it before the first
/// subscription is added: that subscription reads everything up to the
/// watermark from the log and takes the rest live, as if the tail had
/// always run. Opening and closing are serialised with that first insert
/// by `lock`, so the idle close cannot close the tail under a new
/// subscription. A SUB whose look-ups opened the tail off the event loop
/// holds it (``openAndHold(raise:)``) until its routing, on the loop, added
/// the subscription or found none to add (``releaseHold(stillNone:)``): an
/// idle close coming due in between leaves it open, so the routing does not
/// reopen it on the loop. Lock order: `lock`, then the router's state; the
/// tail's own handler takes only the router's.
final class LiveTail: @unchecked Sendable {
    // @unchecked: `open`, `epoch`, `holds` and `idleChecksDone` are guarded by `lock`.
    private let log: any SharedMessageLog
    private let idle: Duration
    private let logger: Logger
    /// Starts the log's tail after a sequence, with the router's handlers.
    private let start: @Sendable (UInt64) throws(StoreError) -> Void
    private let lock = NIOLock()
    private var open = false
    /// Moves on with every subscription, so an idle close scheduled before it does nothing.
    private var epoch: UInt64 = 0
    /// Idle closes that came due, whether they closed the tail or found it needed.
    private var idleChecksDone = 0
    /// SUBs between their off-loop open and their routing (``openAndHold(raise:)``).
    private var holds = 0

    init(log: any SharedMessageLog, idle: Duration, logger: Logger,
         start: @escaping @Sendable (UInt64) throws(StoreError) -> Void) {
        self.log = log
        self.idle = idle
        self.logger = logger
        self.start = start
    }

    /// Runs `body` (the router's insert) with the tail open. When it was
    /// closed: asks the log's last sequence, passes it to `raise` (the
    /// router's watermark), then opens the tail after it. A failure (no
    /// quorum, no connection) is thrown and `body` does not run.
    func whileOpen<T>(raise: (UInt64) -> Void, _ body: () -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        epoch &+= 1
        if !open {
            let last = try log.lastSequence()
            raise(last)
            try start(last)
            open = true
            // Info, not debug: an operator asking why an edge does or does not
            // receive the stream sees when it follows it.
            logger.info("following the shared log for live delivery (first subscription)", metadata: ["after_sequence": "\(last)"])
        }
        return body()
    }

    /// Opens the tail as ``whileOpen(raise:_:)`` does and holds it open for a
    /// SUB whose routing comes later; the SUB calls ``releaseHold(stillNone:)``
    /// once routed, whether it added a subscription or not.
    func openAndHold(raise: (UInt64) -> Void) throws(StoreError) {
        try whileOpen(raise: raise) { holds += 1 }
    }

    /// Ends a hold of ``openAndHold(raise:)``; with no hold left and
    /// `stillNone()` true (no subscription), the tail closes after `idle`.
    func releaseHold(stillNone: @escaping @Sendable () -> Bool) {
        let none = lock.withLock { () -> Bool in
            holds = max(0, holds - 1)
            return holds == 0
        }
        if none && stillNone() { lastSubscriptionEnded(stillNone: stillNone) }
    }

    /// Whether the tail is open now.
    var isOpen: Bool { lock.withLock { open } }
    /// How many idle closes came due so far (each either closed the tail or
    /// found it still needed): the tests wait for one.
    var idleChecks: Int { lock.withLock { idleChecksDone } }

    /// The last subscription ended: the tail closes after `idle`, unless a
    /// subscription started in the meantime, a SUB holds it, or `stillNone`
    /// says one exists.
    func lastSubscriptionEnded(stillNone: @escaping @Sendable () -> Bool) {
        let scheduled = lock.withLock { epoch }
        DispatchQueue.global().asyncAfter(deadline: .now() + idle.timeInterval) { [self] in
            lock.withLock {
                idleChecksDone += 1
                guard open, epoch == scheduled, holds == 0, stillNone() else { return }
                log.stopTail()
                open = false
                logger.info("stopped following the shared log: no subscription for tail_idle", metadata: ["tail_idle": "\(idle)"])
            }
        }
    }
}

extension Duration {
    var timeInterval: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
