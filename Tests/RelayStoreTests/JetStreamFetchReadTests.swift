import CNATS
import Foundation
import NIOCore
import RelayCore
@testable import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// Replay on the JetStream log: a read of many messages takes all but its
/// first 8 in one fetch of an ephemeral pull consumer, not a direct get per
/// message, which held a replay through a cluster edge to about 4,000 msg/s
/// (docs/cluster.md). The tests count the NATS messages the log's connection
/// sends, so the per-message read fails them whatever its speed.
@Suite("JetStream reads in batches")
struct JetStreamFetchReadTests {
    /// 2,000 messages, `a.*` and `b.*` alternating.
    static func fill(_ log: any MessageLog) async throws {
        var messages: [NewMessage] = []
        for index in 0..<2_000 { messages.append(try message(index % 2 == 0 ? "a.x" : "b.y", "m\(index)")) }
        _ = try await log.appendAll(messages)
    }

    /// The texts of ``fill(_:)``'s messages, every `step`-th from the first.
    static func expectedTexts(every step: Int) -> [String] {
        stride(from: 0, to: 2_000, by: step).map { "m\($0)" }
    }

    /// The sequences of the `a.*` messages: 1, 3, 5, ...
    static let expectedSequences: [UInt64] = stride(from: 1, to: 2_000, by: 2).map { UInt64($0) }

    /// Reads `filter` from 1 to the end in reads of `maxMessages`, as a
    /// subscriber's replay does; every message, and how many reads it took.
    static func replay(_ log: any MessageLog, filter: String, maxMessages: Int,
                       maxBytes: Int = 1 << 20, maxScan: Int = 65_536) throws -> (messages: [StoredMessage], reads: Int) {
        var all: [StoredMessage] = []
        var next: UInt64 = 1
        for reads in 1...10_000 {
            let batch = try log.read(from: next, filter: TopicFilter(filter), maxMessages: maxMessages, maxBytes: maxBytes, maxScan: maxScan)
            all += batch.messages
            #expect(batch.next >= next, "a read went back from \(next) to \(batch.next)")
            next = batch.next
            if batch.reachedEnd { return (all, reads) }
        }
        Issue.record("the replay of \(filter) never reached the end")
        return (all, 10_000)
    }

    @Test("a filtered replay of 1,000 of 2,000 messages: every one, in order, in a few NATS requests")
    func replayFetches() async throws {
        try await withLog(.jetstream) { log in
            let jetstream = try #require(log as? JetStreamMessageLog)
            try await Self.fill(log)
            let before = try #require(jetstream.natsMessageCounts).sent
            let (messages, reads) = try Self.replay(log, filter: "a.>", maxMessages: 1_024)
            let sent = try #require(jetstream.natsMessageCounts).sent - before
            let texts: [String] = messages.map(\.text)
            let sequences: [UInt64] = messages.map(\.sequence)
            #expect(texts == Self.expectedTexts(every: 2))
            #expect(sequences == Self.expectedSequences)
            #expect(reads <= 2, "\(reads) reads")
            // The first 8 by direct gets, the rest in one fetch (the consumer's create, the
            // pull, the delete); at the end a stream info and a count (a consumer's create,
            // up to four info reads, its delete).
            #expect(sent <= 40, "the replay of 1,000 messages sent \(sent) NATS messages (one direct get per message sends 1,000)")
            let fallbacks = jetstream.fetchFallbacks.withLock { $0 }
            #expect(fallbacks == 0)
        }
    }

    @Test("a fetch read stops at maxBytes and the next one resumes right after it: no gap, no duplicate")
    func byteLimitResumes() async throws {
        try await withLog(.jetstream) { log in
            try await Self.fill(log)
            // "mNNNN" is at most 5 bytes: 100 bytes end a read after 20 to 50 messages.
            let (messages, reads) = try Self.replay(log, filter: ">", maxMessages: 512, maxBytes: 100)
            let texts: [String] = messages.map(\.text)
            #expect(texts == Self.expectedTexts(every: 1))
            #expect(reads >= 40, "\(reads) reads: the byte limit did not end them")
        }
    }

    @Test("maxScan bounds a fetch read as it bounds the direct gets: a sparse filter moves on to the scan's end")
    func scanLimit() async throws {
        try await withLog(.jetstream) { log in
            try await Self.fill(log)
            _ = try await log.appendAll([try message("c.z", "last")])
            // c.z's only message is at 2,001; a scan of 500 from 1 finds nothing and says where to go on.
            let batch = try log.read(from: 1, filter: TopicFilter("c.>"), maxMessages: 64, maxBytes: 1 << 20, maxScan: 500)
            #expect(batch.messages.isEmpty)
            #expect(batch.next == 501)
            #expect(!batch.reachedEnd)
            let (messages, _) = try Self.replay(log, filter: "c.>", maxMessages: 64, maxScan: 500)
            let sequences: [UInt64] = messages.map(\.sequence)
            #expect(sequences == [2_001])
        }
    }

    @Test("a fetch that fails: the read goes on by direct gets with every message, and reads do not try to fetch again during the pause")
    func failedFetchFallsBack() async throws {
        try await withLog(.jetstream) { log in
            let jetstream = try #require(log as? JetStreamMessageLog)
            try await Self.fill(log)
            jetstream.failFetchesForTesting.withLock { $0 = NATSError("no stream leader (injected)", NATS_TIMEOUT) }
            let (messages, _) = try Self.replay(log, filter: "a.>", maxMessages: 1_024)
            let texts: [String] = messages.map(\.text)
            #expect(texts == Self.expectedTexts(every: 2))
            // One failed fetch; the reads after it (the same replay, and another) made none.
            let failedOnce = jetstream.fetchFallbacks.withLock { $0 }
            #expect(failedOnce == 1)
            let again = try Self.replay(log, filter: "b.>", maxMessages: 1_024).messages.count
            #expect(again == 1_000)
            let (failed, fetched) = (jetstream.fetchFallbacks.withLock { $0 }, jetstream.fetches.withLock { $0 })
            #expect(failed == 1)
            #expect(fetched == 0)
        }
    }

    @Test("a read of 64 KiB (a replay turn's) of 1,000-byte messages fetches about the 65 it keeps, not 1,024")
    func fetchSizedByBytes() async throws {
        try await withLog(.jetstream) { log in
            let jetstream = try #require(log as? JetStreamMessageLog)
            let payload = String(repeating: "p", count: 994)
            var messages: [NewMessage] = []
            for index in 0..<2_000 { messages.append(try message("big.x", String(format: "%05d-", index) + payload)) }
            _ = try await log.appendAll(messages)
            let before = try #require(jetstream.natsMessageCounts).received
            let batch = try log.read(from: 1, filter: TopicFilter("big.>"), maxMessages: 1_024, maxBytes: 64 << 10, maxScan: 65_536)
            let received = try #require(jetstream.natsMessageCounts).received - before
            let texts: [String] = batch.messages.map { String($0.text.prefix(5)) }
            let expected: [String] = (0..<batch.messages.count).map { String(format: "%05d", $0) }
            #expect(texts == expected)
            #expect(batch.messages.count >= 65 && batch.messages.count <= 66, "\(batch.messages.count) messages in 64 KiB")
            #expect(batch.next == UInt64(batch.messages.count) + 1)
            let fetched = jetstream.fetches.withLock { $0 }
            #expect(fetched == 1)
            // 8 direct gets, the fetch's messages and a few replies; a fetch of 1,024 receives over 1,000.
            #expect(received <= 100, "a 64 KiB read received \(received) NATS messages")
        }
    }
}
