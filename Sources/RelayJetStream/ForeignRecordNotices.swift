import Foundation
import Logging
import RelayStore

/// Records in the stream that relayd cannot decode: something other than a
/// relayd edge published into the stream's subjects (a bench's direct nats.c
/// run, a misconfigured tool). The tail and reads skip each one; logging each would
/// flood the log (and cost CPU) while telling an operator nothing new after
/// the first. So: the first is logged with its sequence, reason and what to
/// do; later ones are counted (``observe(_:)``, relay_storage_foreign_records_total)
/// and summed up in at most one line per `interval` (docs/cluster.md).
final class ForeignRecordNotices: @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`.
    private let lock = NSLock()
    private let logger: Logger
    private let interval: Duration
    private let place: String
    // Guarded by `lock`.
    private var total: UInt64 = 0
    private var unreported: UInt64 = 0
    private var lastSequence: UInt64 = 0
    private var lastReport = ContinuousClock.now
    private var observer: (@Sendable (Int) -> Void)?
    /// Sequences already counted: a replay re-reads the same foreign records
    /// (and the tail passes those a read found), and each is one record, counted
    /// and logged once. Bounded by ``rememberedLimit``: past it the lower half
    /// is forgotten, so re-reading one of those old ones counts it again.
    private var counted = Set<UInt64>()
    static let rememberedLimit = 65_536

    init(logger: Logger, interval: Duration, stream: String, subjects: String) {
        self.logger = logger
        self.interval = interval
        self.place = "stream \(stream), subjects \(subjects)"
    }

    /// Records skipped so far.
    var count: UInt64 { lock.withLock { total } }

    /// `observer` is called with the number of each newly skipped record (for a counter).
    func observe(_ observer: @escaping @Sendable (Int) -> Void) {
        lock.withLock { self.observer = observer }
    }

    /// The tail or a read skipped the record at `sequence` (`reason`: why it
    /// did not decode); one already counted is not counted again.
    func skipped(sequence: UInt64, reason: Error) {
        let outcome = lock.withLock { () -> (Bool, (UInt64, UInt64)?, (@Sendable (Int) -> Void)?)? in
            guard remember(sequence) else { return nil }
            total += 1
            lastSequence = sequence
            if total == 1 {
                lastReport = .now
                return (true, nil, self.observer)
            }
            unreported += 1
            return (false, takeSummary(), self.observer)
        }
        guard case let (first, summary, notify)? = outcome else { return }
        notify?(1)
        if first {
            logger.error("skipping an undecodable stream message: something other than relayd publishes into \(place); Relay's stream must be written only by relayd edges (docs/cluster.md). Further ones are counted in relay_storage_foreign_records_total and summed up every \(interval)",
                         metadata: ["sequence": "\(sequence)", "error": "\(reason)"])
        }
        if let summary { log(summary) }
    }

    /// Logs the summary of records skipped since the last line, if `interval`
    /// has passed (called by a timer, so a burst that stopped is still reported).
    func flush() {
        if let summary = lock.withLock({ takeSummary() }) { log(summary) }
    }

    /// Under `lock`: whether `sequence` is new (then it is remembered).
    private func remember(_ sequence: UInt64) -> Bool {
        guard counted.insert(sequence).inserted else { return false }
        if counted.count > Self.rememberedLimit {
            // Sequences only grow, and a replay usually re-reads recent ones: keep the upper half
            // (one sort per rememberedLimit / 2 foreign records).
            let sorted = counted.sorted()
            counted = Set(sorted[(sorted.count / 2)...])
        }
        return true
    }

    /// Under `lock`: the unreported count and last sequence when a summary is due.
    private func takeSummary() -> (UInt64, UInt64)? {
        guard unreported > 0, ContinuousClock.now - lastReport >= interval else { return nil }
        defer { unreported = 0; lastReport = .now }
        return (unreported, lastSequence)
    }

    private func log(_ summary: (skipped: UInt64, last: UInt64)) {
        logger.warning("skipped \(summary.skipped) more undecodable stream messages, last sequence \(summary.last) (\(place) written by something other than relayd; docs/cluster.md)")
    }
}
