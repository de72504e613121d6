@testable import RelayClient
import Testing

/// The client's table of unanswered publishes (InFlightTable.swift) must
/// behave as the dictionary it replaced: any id, in any order, found once.
@Suite("In-flight publishes by id")
struct InFlightTableTests {
    static func publish(_ id: UInt64) -> PendingPublish {
        let pending = PendingPublish(topic: "t", headers: .empty, payload: ByteBuffer(), completion: { _ in })
        pending.id = id
        return pending
    }

    @Test("in order, out of order, with gaps, ids below the first, replacement and draining in id order")
    func dictionarySemantics() {
        var table = InFlightTable()
        #expect(table.remove(1) == nil)
        for id: UInt64 in [5, 6, 7, 9, 12] { table.insert(Self.publish(id)) }  // 8, 10, 11: never sent
        #expect(table.count == 5)
        #expect(table.remove(8) == nil)
        #expect(table.remove(4) == nil)
        #expect(table.remove(13) == nil)
        #expect(table.remove(6)?.id == 6)   // out of order: 5 still waits
        #expect(table.remove(6) == nil)     // found once
        #expect(table.remove(5)?.id == 5)   // the front moves past 5, 6 and the gap
        #expect(table.count == 3)
        table.insert(Self.publish(2))       // below the front
        let replacement = Self.publish(9)
        table.insert(replacement)           // same id: replaced, not counted twice
        #expect(table.count == 4)
        #expect(table.remove(9) === replacement)
        #expect(table.removeAll().map(\.id) == [2, 7, 12])
        #expect(table.isEmpty)
        #expect(table.remove(7) == nil)
    }

    @Test("a window of publishes answered in a shuffled order leaves the table empty, each found once")
    func shuffled() {
        var table = InFlightTable()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            let ids = (UInt64(round * 1000 + 1)...UInt64(round * 1000 + 300))
            for id in ids { table.insert(Self.publish(id)) }
            var found: [UInt64] = []
            for id in ids.shuffled(using: &generator) {
                if let publish = table.remove(id) { found.append(publish.id) }
            }
            #expect(found.sorted() == Array(ids))
            #expect(table.isEmpty)
        }
    }
}
