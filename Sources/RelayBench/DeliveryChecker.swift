/// Checks what one subscriber received from one set of publishers: every
/// counter once, in the order each publisher sent them. A fast wrong answer
/// (drops, redeliveries, reordering) shows up here, not as a better number.
public struct DeliveryChecker: Sendable {
    /// Per publisher: which counters arrived (bitset) and the highest so far.
    private var seen: [[UInt64]]
    private var highest: [Int64]
    private let perPublisher: Int

    public private(set) var distinct = 0
    public private(set) var duplicated = 0
    /// Messages that arrived after a later message of the same publisher.
    public private(set) var outOfOrder = 0
    /// Payloads that do not decode or name an unknown publisher or counter.
    public private(set) var corrupt = 0

    public init(publishers: Int, perPublisher: Int) {
        self.perPublisher = perPublisher
        let words = (max(perPublisher, 0) + 63) / 64
        seen = Array(repeating: Array(repeating: 0, count: words), count: max(publishers, 0))
        highest = Array(repeating: -1, count: max(publishers, 0))
    }

    /// Records one delivery.
    public mutating func record(publisher: UInt32, counter: UInt64) {
        let p = Int(publisher)
        guard p < seen.count, counter < UInt64(perPublisher) else {
            corrupt += 1
            return
        }
        let c = Int(counter)
        let word = c >> 6
        let bit: UInt64 = 1 << UInt64(c & 63)
        if seen[p][word] & bit != 0 {
            duplicated += 1
            return
        }
        seen[p][word] |= bit
        distinct += 1
        if Int64(c) < highest[p] {
            outOfOrder += 1
        } else {
            highest[p] = Int64(c)
        }
    }

    /// Of `expected` messages that must have arrived, how many did not.
    public func lost(expected: Int) -> Int { max(0, expected - distinct) }
}
