import RelayCore
import RelayJetStream
@testable import RelayStore
import RelayTestSupport
import Testing

/// `last N` on the JetStream log against the in-memory log's answer, over a
/// stream long enough for the search to take many steps and with filters
/// that match densely, sparsely, through wildcards and not at all. The
/// contract test's five messages once resolved `last(2)` of `x.*` one
/// message early on a loaded machine: nats-server 2.9 undercounted a new
/// filtered consumer's pending messages (docs/cluster.md, "What differs from
/// LMDB"), and did again in wave 24's CI run. Since then N up to 256 is
/// found by walking the newest matches (no consumer); the count is kept for
/// larger N, and this test runs both ways.
@Suite("JetStream last N")
struct JetStreamLastNTests {
    static let topics = ["x.a", "x.b", "x.c.d", "y", "z.a", "x.a", "x.a", "y"]

    /// 256: relayd's default, every N here is walked; 0: every N is counted
    /// with ephemeral consumers (relayd's way for N above 256).
    @Test("last N resolves exactly as the in-memory log does, for every filter and N", arguments: [UInt64(256), 0])
    func lastNMatchesTheOracle(walkLimit: UInt64) async throws {
        // A fixed pseudo-random topic order: runs of one topic and interleavings.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var batches: [[NewMessage]] = []
        for batch in 0..<12 {
            var messages: [NewMessage] = []
            for index in 0..<(5 + batch % 7) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let topic = Self.topics[Int(state >> 33) % Self.topics.count]
                messages.append(try message(topic, "\(batch).\(index)"))
            }
            batches.append(messages)
        }
        let total = batches.reduce(0) { $0 + $1.count }
        let filters = [">", "x.*", "x.a", "x.>", "*.a", "y", "x.c.d", "nope", "nope.*"]
        let counts: [UInt64] = [1, 2, 3, 5, 8, 13, 21, 40, UInt64(total - 1), UInt64(total), UInt64(total + 5)]

        let oracle = InMemoryMessageLog(configuration: StoreConfiguration(directory: "/nonexistent/in-memory"))
        defer { oracle.close() }
        for batch in batches { _ = try await oracle.appendAll(batch) }

        let server = try await SingleNATSServer(pki: TLSTestPKI())
        var settings = server.jetStreamSettings(replicas: 1)
        settings.lastNWalkLimit = walkLimit
        var configuration = StoreConfiguration(directory: "/nonexistent/jetstream")
        configuration.maxMapSize = 256 << 20  // as withLog(.jetstream)
        let log = try JetStreamMessageLog.open(configuration, settings: settings)
        defer { log.close() }
        do {
            for batch in batches { _ = try await log.appendAll(batch) }
            #expect(try log.lastSequence() == UInt64(total))
            var mismatches: [String] = []
            for filter in filters {
                let topicFilter = try TopicFilter(filter)
                for n in counts {
                    let expected = try oracle.startSequence(.last(n), filter: topicFilter)
                    let found = try log.startSequence(.last(n), filter: topicFilter)
                    if found != expected { mismatches.append("last(\(n)) of \(filter): \(found), expected \(expected)") }
                }
            }
            #expect(mismatches == [])
        }
    }
}
