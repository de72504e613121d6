import DequeModule

/// Publishes sent and not yet answered, by publish id (event-loop confined,
/// like the rest of ``ConnectionCore``).
///
/// A `[UInt64: PendingPublish]` cost ~450 instructions a publish in the
/// Swift client's profile (wave 9): hashing the id on insert, again on the
/// lookup of the answer, and the delete. Ids come from one counter and go out
/// in increasing order, and answers mostly come back in that order, so a
/// deque indexed by `id - base` does the same job: slot i holds the publish
/// with id `base + i`, nil once answered (or for an id that was not sent:
/// a publish refused before sending leaves a gap). Answered slots at the
/// front are dropped as they appear, so the deque spans the oldest
/// unanswered id to the newest sent. Any order of ids works; ids below
/// `base` grow the front.
struct InFlightTable {
    private var slots = Deque<PendingPublish?>()
    private var base: UInt64 = 0
    /// Publishes held (slots that are not nil).
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Adds `publish` under its id, replacing one already held under that id.
    mutating func insert(_ publish: PendingPublish) {
        let id = publish.id
        if slots.isEmpty {
            base = id
            slots.append(publish)
            count = 1
            return
        }
        if id < base {
            slots.prepend(contentsOf: repeatElement(nil, count: Int(base - id)))
            base = id
        }
        let index = Int(id - base)
        if index >= slots.count {
            slots.append(contentsOf: repeatElement(nil, count: index - slots.count))
            slots.append(publish)
            count += 1
        } else {
            if slots[index] == nil { count += 1 }
            slots[index] = publish
        }
    }

    /// Takes out the publish with this id, nil when none is held.
    mutating func remove(_ id: UInt64) -> PendingPublish? {
        guard id >= base, id - base < UInt64(slots.count) else { return nil }
        let index = Int(id - base)
        guard let publish = slots[index] else { return nil }
        slots[index] = nil
        count -= 1
        if count == 0 {
            slots.removeAll(keepingCapacity: true)
        } else {
            while let first = slots.first, first == nil {
                slots.removeFirst()
                base += 1
            }
        }
        return publish
    }

    /// Takes out everything, in id order.
    mutating func removeAll() -> [PendingPublish] {
        let all = slots.compactMap { $0 }
        slots.removeAll(keepingCapacity: true)
        count = 0
        return all
    }
}
