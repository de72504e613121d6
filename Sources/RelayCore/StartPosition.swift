/// Where a subscription starts (Protocol/relay-v1.md §4.6): the one name for
/// this idea on the wire (SUB's start kind and value), in the store (which
/// resolves it to a first sequence) and in the client API. A durable
/// subscription whose cursor exists resumes from the cursor instead.
public enum StartPosition: Sendable, Hashable {
    /// Only messages committed after the SUBACK.
    case latest
    /// From the oldest retained message.
    case earliest
    /// From this sequence (≥ 1) on; a pruned one starts at the next stored.
    case sequence(UInt64)
    /// From the first message committed at or after this time (ns since the epoch).
    case time(UInt64)
    /// The last N (≥ 1) matching messages, then live.
    case last(UInt64)

    /// The SUB frame's start kind.
    public var kind: UInt8 {
        switch self {
        case .latest: return 0
        case .earliest: return 1
        case .sequence: return 2
        case .time: return 3
        case .last: return 4
        }
    }

    /// The SUB frame's start value (0 for the kinds that take none).
    public var value: UInt64 {
        switch self {
        case .sequence(let v), .time(let v), .last(let v): return v
        case .latest, .earliest: return 0
        }
    }
}
