// RelayBroker routing: matching a published topic against 10,000
// subscriptions.
//
// The trie itself (`SubscriptionTrie`) is internal to RelayBroker, and
// `@testable import` does not work in a release build, so these go through
// its public owner, `Router`: `subscribe(_:sink:id:)` to fill it and
// `publish(_:)` for one committed message, which is the broker's real path
// (router lock, `SubscriptionTrie.match`, grouping the deliveries by session,
// one `deliver` call per session). What they add to the bare match: the
// uncontended router lock, grouping the deliveries by session (a dictionary
// of arrays, built per publish) and the calls into no-op sinks.
import Benchmark
import NIOCore
import RelayBroker
import RelayCore

/// Counts the deliveries the router hands it. Only the benchmark's thread
/// calls `deliver` (`Router.publish` runs on its caller's thread), so the
/// plain counter needs no lock: hence the unchecked Sendable.
final class CountingSink: DeliverySink, @unchecked Sendable {
    private(set) var deliveries = 0
    func deliver(_ batch: [RoutedDelivery]) { deliveries &+= batch.count }
}

/// 10,000 subscriptions held by 100 sessions (100 each), over topics
/// `t<tenant>.svc<service>.<kind>.<event>` (100 tenants, 20 services,
/// 2 kinds x 5 events):
/// - 7,000 exact filters, e.g. `t42.svc7.orders.created`
/// - 2,000 with `*`: `t42.*.orders.created` (1,000) and `t42.svc7.*.created` (1,000)
/// - 1,000 with `>`: `t42.svc7.>` (900) and `t42.>` (100)
/// The hot topic `t42.svc7.orders.created` matches one of each form: 5,
/// in 5 sessions.
final class RoutingFixture {
    static let hotTopic = "t42.svc7.orders.created"
    static let hotMatches = 5
    static let kinds = ["orders", "invoices"]
    static let events = ["created", "updated", "deleted", "shipped", "paid"]

    let router = Router(watermark: 0)
    let sinks = (0..<100).map { _ in CountingSink() }
    /// One-message batches, built once: `publish` takes an array, and
    /// building it per call would add an allocation that is not routing.
    let hot: [RoutedMessage]
    /// Every topic of the space (20,000), one batch each, published in
    /// turn: more distinct topics than the trie's result cache holds
    /// (4,096), so each publish walks the trie.
    let distinct: [[RoutedMessage]]
    var next = 0

    static func kindEvent(_ index: Int) -> String { "\(kinds[index / events.count]).\(events[index % events.count])" }

    init() throws {
        var filters: [String] = []
        for k in 0..<7_000 { filters.append("t\(k % 100).svc\((k / 100) % 20).\(Self.kindEvent(k / 2_000))") }
        for k in 0..<1_000 { filters.append("t\(k % 100).*.\(Self.kindEvent(k / 100))") }
        for k in 0..<1_000 { filters.append("t\(k % 100).svc\(k / 100).*.created") }
        for k in 0..<900 { filters.append("t\(k % 100).svc\(k / 100).>") }
        for k in 0..<100 { filters.append("t\(k).>") }
        // Session = (n / 100) % 100: each holds 100 subscriptions, and the
        // hot topic's 5 matches (n = 742, 7042, 8742, 9742, 9942) are in 5
        // different sessions, the usual fan-out.
        for (n, filter) in filters.enumerated() {
            _ = router.subscribe(try TopicFilter(filter), sink: sinks[(n / 100) % sinks.count], id: UInt32(n))
        }
        guard router.subscriptionCount == 10_000 else {
            throw MicroBenchmarkError("the router holds \(router.subscriptionCount) subscriptions, not 10,000")
        }

        let payload = ByteBuffer(repeating: 0x61, count: 128)
        func message(_ topic: String, _ sequence: UInt64) throws -> RoutedMessage {
            guard let routed = RoutedMessage.encode(
                sequence: sequence, timestamp: 1, topic: topic, publisherPrincipal: "bench",
                publisherFingerprint: .zero, headers: .empty, payload: payload) else {
                throw MicroBenchmarkError("cannot encode a message on \(topic)")
            }
            return routed
        }
        hot = [try message(Self.hotTopic, 1)]
        var distinct: [[RoutedMessage]] = []
        for tenant in 0..<100 {
            for service in 0..<20 {
                for kindEvent in 0..<(Self.kinds.count * Self.events.count) {
                    distinct.append([try message("t\(tenant).svc\(service).\(Self.kindEvent(kindEvent))", UInt64(distinct.count + 2))])
                }
            }
        }
        self.distinct = distinct

        // The filters above are meant to give the hot topic exactly one match
        // of each form; check, so a mistake here cannot pass as a fast trie.
        router.publish(hot)
        let delivered = sinks.reduce(0) { $0 + $1.deliveries }
        let sessions = sinks.filter { $0.deliveries > 0 }.count
        guard delivered == Self.hotMatches, sessions == Self.hotMatches else {
            throw MicroBenchmarkError("\(Self.hotTopic) matched \(delivered) subscriptions in \(sessions) sessions, "
                + "expected \(Self.hotMatches) in \(Self.hotMatches)")
        }
    }
}

func registerRoutingBenchmarks() {
    // Steady traffic on a few topics: the trie's result cache answers.
    Benchmark("routing: 10k subs, publish to a repeated topic (cache hit, 5 matches)",
              configuration: perOperation) { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            fixture.router.publish(fixture.hot)
        }
        blackHole(fixture.sinks[0].deliveries)
    } setup: {
        try RoutingFixture()
    }

    // Many distinct topics: every publish splits the topic and walks the
    // trie (literal, `*` and `>` children at each level).
    Benchmark("routing: 10k subs, publish to 20k distinct topics (trie walk)",
              configuration: perOperation) { benchmark, fixture in
        let count = fixture.distinct.count
        for _ in benchmark.scaledIterations {
            fixture.router.publish(fixture.distinct[fixture.next])
            fixture.next = fixture.next + 1 == count ? 0 : fixture.next + 1
        }
        blackHole(fixture.sinks[0].deliveries)
    } setup: {
        try RoutingFixture()
    }
}
