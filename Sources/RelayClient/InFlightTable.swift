/// Publishes sent and not yet answered, by publish id (event-loop confined,
/// like the rest of ``ConnectionCore``).
///
/// A `[UInt64: PendingPublish]` cost ~450 instructions a publish in the
/// Swift client's profile (wave 9): hashing the id on insert, again on the
/// lookup of the answer, and the delete. Ids come from one counter and go out
/// in increasing order, and answers mostly come back in that order, so a
/// ring indexed by `id - base` does the same job: the slot `base + i` lives
/// at `(head + i) & mask`, nil once answered (or for an id that was not sent:
/// a publish refused before sending leaves a gap). Answered slots at the
/// front are dropped as they appear, so the ring spans the oldest unanswered
/// id to the newest sent. Any order of ids works; ids below `base` grow the
/// front. A plain array as the ring, not a `Deque` (wave 22): its append and
/// its checks were ~110 instructions an insert.
struct InFlightTable {
    /// A power of two slots (or none yet).
    private var ring: [PendingPublish?] = []
    /// Where `base` lives in `ring`.
    private var head = 0
    /// Slots from `base` on that are in use (held or gaps): ids `base ..< base + span`.
    private var span = 0
    private var base: UInt64 = 0
    /// Publishes held (slots that are not nil).
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    private var mask: Int { ring.count - 1 }

    /// Room for `minimum` slots from `base`, keeping their order.
    private mutating func grow(to minimum: Int) {
        var capacity = max(16, ring.count)
        while capacity < minimum { capacity *= 2 }
        guard capacity > ring.count else { return }
        var grown = [PendingPublish?](repeating: nil, count: capacity)
        for i in 0..<span { grown[i] = ring[(head + i) & mask] }
        ring = grown
        head = 0
    }

    /// Adds `publish` under its id, replacing one already held under that id.
    mutating func insert(_ publish: PendingPublish) {
        let id = publish.id
        if span == 0 {
            if ring.isEmpty { grow(to: 16) }
            base = id
            head = 0
        } else if id < base {
            let extra = Int(base - id)
            if span + extra > ring.count { grow(to: span + extra) }
            head = (head - extra) & mask
            base = id
            span += extra
        }
        let index = Int(id - base)
        if index >= span {
            if index >= ring.count { grow(to: index + 1) }
            span = index + 1
        }
        let slot = (head + index) & mask
        if ring[slot] == nil { count += 1 }
        ring[slot] = publish
    }

    /// Takes out the publish with this id, nil when none is held.
    mutating func remove(_ id: UInt64) -> PendingPublish? {
        guard id >= base, id - base < UInt64(span) else { return nil }
        let slot = (head + Int(id - base)) & mask
        guard let publish = ring[slot].take() else { return nil }
        count -= 1
        if count == 0 {
            span = 0
        } else {
            while ring[head] == nil {
                head = (head + 1) & mask
                base += 1
                span -= 1
            }
        }
        return publish
    }

    /// Takes out everything, in id order.
    mutating func removeAll() -> [PendingPublish] {
        var all: [PendingPublish] = []
        all.reserveCapacity(count)
        for i in 0..<span {
            if let publish = ring[(head + i) & mask].take() { all.append(publish) }
        }
        span = 0
        count = 0
        return all
    }
}
