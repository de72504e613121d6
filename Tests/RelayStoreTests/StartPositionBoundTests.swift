import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import Testing

/// Issue 16 item 6: `last N` is resolved on the subscriber's event loop, so
/// it must not walk the whole log. It examines at most `maxStartScan`
/// entries; past that the subscription starts at the oldest match found.
@Suite("last N start position is bounded")
struct StartPositionBoundTests {
    @Test("a wildcard last N examines at most maxStartScan records", arguments: LogKind.local)
    func wildcardIsBounded(_ kind: LogKind) async throws {
        try await withLog(kind, { $0.maxStartScan = 1_000 }) { log in
            // One match at sequence 1, 3,000 records that do not match, two matches at the end.
            try await log.appendAll([try message("m.old", "old")])
            for chunk in 0..<3 { try await log.appendAll(try (0..<1_000).map { try message("other", "\(chunk).\($0)") }) }
            let tail = try await log.appendAll([try message("m.a", "a"), try message("m.b", "b")])
            #expect(tail == [3_002, 3_003])
            // The match at 1 is 3,002 records back, beyond the bound: it is not reached.
            #expect(try log.startSequence(.last(10), filter: TopicFilter("m.*")) == 3_002)
            // Within the bound the answer is exact.
            #expect(try log.startSequence(.last(1), filter: TopicFilter("m.*")) == 3_003)
            #expect(try log.startSequence(.last(2), filter: TopicFilter("m.*")) == 3_002)
            // No match within the bound: from the next message on.
            #expect(try log.startSequence(.last(5), filter: TopicFilter("m.old.*")) == 3_004)
        }
    }

    @Test("a literal last N walks at most maxStartScan of the topic's messages, and is exact when N covers the topic",
          arguments: LogKind.local)
    func literalIsBounded(_ kind: LogKind) async throws {
        try await withLog(kind, { $0.maxStartScan = 1_000 }) { log in
            for chunk in 0..<3 { try await log.appendAll(try (0..<1_000).map { try message("lit", "\(chunk).\($0)") }) }
            try await log.appendAll([try message("noise", "n")])
            // 2,500 back is beyond the bound: the 1,000th newest (sequence 2,001).
            #expect(try log.startSequence(.last(2_500), filter: TopicFilter("lit")) == 2_001)
            #expect(try log.startSequence(.last(10), filter: TopicFilter("lit")) == 2_991)
            // N at least the topic's size: its first message, with no walk at all.
            #expect(try log.startSequence(.last(3_000), filter: TopicFilter("lit")) == 1)
            #expect(try log.startSequence(.last(UInt64.max), filter: TopicFilter("lit")) == 1)
        }
    }
}
