import Testing
import RelayCore

/// `TopicFilter.matches(utf8:)` is the one byte-level matcher (the store's
/// wildcard replay, `last N` and retention use it); it must agree with the
/// String-level `matches(_:)` on every pair.
@Suite("Topic filter matching on bytes")
struct TopicFilterBytesTests {
    @Test("matches(utf8:) agrees with matches(_:) on every filter and topic pair")
    func bytesAgreeWithTokens() throws {
        let filters = ["a", "a.b", "a.*", "a.>", "*", ">", "*.b", "a.*.c", "a.b.>", "*.*", "ab", "a.bc", "*.>", "a.b.c.d"]
        let topics = ["a", "b", "a.b", "a.c", "a.b.c", "a.bc", "ab", "x.b", "a.b.c.d", "a.x.c", "abc", "a.b.cd"]
        var matched = 0
        for f in filters {
            let filter = try TopicFilter(f)
            for t in topics {
                let fast = Array(t.utf8).withUnsafeBytes { filter.matches(utf8: $0) }
                #expect(fast == filter.matches(try Topic(t)), "filter \(f) vs topic \(t)")
                if fast { matched += 1 }
            }
        }
        // Both outcomes occur, so agreement is not all-false or all-true.
        #expect(matched > 10 && matched < filters.count * topics.count - 10)
    }

    @Test("a literal token compares whole tokens, not prefixes")
    func literalTokensAreWhole() throws {
        let filter = try TopicFilter("orders.eu.*")
        #expect(Array("orders.eu.x".utf8).withUnsafeBytes { filter.matches(utf8: $0) })
        #expect(!Array("orders.eux.x".utf8).withUnsafeBytes { filter.matches(utf8: $0) })
        #expect(!Array("orders.e.x".utf8).withUnsafeBytes { filter.matches(utf8: $0) })
        #expect(!Array("orders.eu".utf8).withUnsafeBytes { filter.matches(utf8: $0) })
    }
}
