import Foundation

/// How a read takes messages in runs of direct gets sent together
/// (``JetStreamMessageLog/read(from:filter:maxMessages:maxBytes:maxScan:)``).
/// A run asks for consecutive sequences, so it pays off when most of them
/// match the read's filter: a read whose runs bring mostly other topics'
/// messages stops making runs, and the server's filtered get skips those
/// for it instead. Runs start at 64 and double while they stay unbroken,
/// so a short read does not ask for many messages it will not keep (a
/// start at 16 replayed 14 % slower through an edge: 33,436 against
/// 39,063 msg/s, medians of three alternated `REPLAY=50000` runs).
struct ReadRuns {
    static let firstLength = 64
    private(set) var enabled = true
    private var nextLength = ReadRuns.firstLength

    /// The length of the next run, or nil when a run is not worth it (off,
    /// or fewer than 2 messages wanted).
    func length(wanted: Int, bytesLeft: Int, averageBytes: Int, scanLeft: UInt64) -> Int? {
        guard enabled else { return nil }
        var count = min(nextLength, wanted, NATSConnection.maxRunLength)
        if averageBytes > 0 { count = min(count, bytesLeft / averageBytes + 1) }
        count = Int(min(UInt64(count), scanLeft))
        return count >= 2 ? count : nil
    }

    /// What a run brought: fewer than half of the messages it asked for
    /// matching the filter turns runs off for this read.
    mutating func record(sent: Int, matched: Int, unbroken: Bool) {
        if unbroken && matched * 2 < sent { enabled = false }
        if unbroken { nextLength = min(nextLength * 2, NATSConnection.maxRunLength) }
    }
}

/// What a JetStream log's reads asked NATS (``JetStreamMessageLog/readStatistics``).
public struct JetStreamReadStatistics: Sendable, Equatable {
    /// Direct gets sent one at a time, each its own round trip.
    public var singleGets: UInt64 = 0
    /// Runs of direct gets sent together, one round trip each.
    public var runs: UInt64 = 0
    /// Direct gets sent in those runs.
    public var runGets: UInt64 = 0
}
