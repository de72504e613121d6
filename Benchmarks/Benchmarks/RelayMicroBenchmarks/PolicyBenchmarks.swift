// RelayPolicy: 1,001 rules and a thousand identities, decisions per connection and per topic.
// 1,000 per-team rules plus one for everyone; a connection's permissions
// are evaluated once at its handshake, then every PUB asks its
// PublishCache and every SUB asks canSubscribe.
import Benchmark
import Foundation
import RelayCore
import RelayPolicy

final class PolicyFixture {
    static let ruleCount = 1_000

    let indexed: Policy
    let fullScan: Policy
    let identities: [Identity]
    /// Team 500's permissions, and the topics and filters it is asked about:
    /// allowed, denied and out-of-scope ones.
    let permissions: Permissions
    let topics: [Topic]
    let filters: [TopicFilter]
    var cache: PublishCache
    /// The next identity to evaluate: connections come from every team in turn.
    var next = 0

    func nextIdentity() -> Identity {
        defer { next = next + 1 == identities.count ? 0 : next + 1 }
        return identities[next]
    }

    init() throws {
        indexed = try Self.makePolicy(indexable: true)
        fullScan = try Self.makePolicy(indexable: false)
        identities = (0..<Self.ruleCount).map(Self.identity)
        permissions = indexed.permissions(for: identities[500])
        topics = try [
            "team500.svc-500-api.orders.created", "team500.svc-500-api.admin", "shared.500.x", "metrics.svc-500-api",
            "team501.svc-501-api.x", "shared.7.x", "broadcast.news", "team500.svc-500-api.a.b.c",
        ].map(Topic.init)
        filters = try ["team500.>", "team500.secret.x", "shared.*.*", "shared.1.*", "broadcast.a.>", "team1.>"]
            .map(TopicFilter.init)
        cache = PublishCache(permissions: permissions)
    }

    static func name(_ pairs: [(String, String, String)]) -> DistinguishedName {
        DistinguishedName(rdns: pairs.map { [.init(oid: $0.1, shortName: $0.0, value: $0.2)] })
    }

    static func identity(_ i: Int) -> Identity {
        Identity(subject: name([("O", "2.5.4.10", "Example"), ("OU", "2.5.4.11", "team-\(i)"), ("CN", "2.5.4.3", "svc-\(i)-api")]),
                 issuer: name([("O", "2.5.4.10", "Relay CA")]), serialNumber: "\(i)",
                 notBefore: Date(timeIntervalSince1970: 0), notAfter: Date(timeIntervalSince1970: 4e9),
                 fingerprintSHA256: .zero, sans: SubjectAlternativeNames(dns: ["svc-\(i)"]),
                 spiffe: SPIFFEID(uri: "spiffe://prod/ns/team-\(i)/sa/api"))
    }

    /// `indexable`: half exact, half prefix-glob conditions, which the rule
    /// index narrows. Otherwise suffix globs, which it cannot use, so every
    /// rule's conditions are checked: the worst case.
    static func makePolicy(indexable: Bool) throws -> Policy {
        var rules: [RuleDefinition] = []
        for i in 0..<ruleCount {
            let match = !indexable ? ["subject.CN": ["*-\(i)-api"]]
                : i % 2 == 0 ? ["subject.OU": ["team-\(i)"]] : ["subject.CN": ["svc-\(i)-*"], "issuer.O": ["Relay CA"]]
            rules.append(RuleDefinition(
                name: "team-\(i)", match: match,
                publish: ["team\(i).{subject.CN}.>", "shared.\(i).*"], subscribe: ["team\(i).>", "shared.*.*"],
                denyPublish: ["team\(i).{subject.CN}.admin"], denySubscribe: ["team\(i).secret.>"]))
        }
        rules.append(RuleDefinition(name: "everyone", publish: ["metrics.{subject.CN}"], subscribe: ["broadcast.>"]))
        return try Policy(definitions: rules, principal: "{spiffe}")
    }
}

func registerPolicyBenchmarks() {
    // Once per connection, after the handshake: conditions of every
    // candidate rule, templating of its filters, deduplication. Tens of
    // microseconds, so one connection per sample.
    Benchmark("policy: permissions for a connection (1,000 rules, indexed)") { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.indexed.permissions(for: fixture.nextIdentity()))
        }
    } setup: {
        try PolicyFixture()
    }

    Benchmark("policy: permissions for a connection (1,000 rules, full scan)") { benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.fullScan.permissions(for: fixture.nextIdentity()))
        }
    } setup: {
        try PolicyFixture()
    }

    // A PUB on a connection, without the cache: split the topic, scan the
    // deny and allow grants. 8 topics in turn.
    Benchmark("policy: canPublish, uncached", configuration: perOperation) { benchmark, fixture in
        var allowed = 0
        for i in benchmark.scaledIterations where fixture.permissions.canPublish(fixture.topics[i & 7]).isAllowed {
            allowed &+= 1
        }
        blackHole(allowed)
    } setup: {
        try PolicyFixture()
    }

    // A SUB: is the filter a subset of an allowed one and clear of the denied ones.
    Benchmark("policy: canSubscribe, uncached", configuration: perOperation) { benchmark, fixture in
        var allowed = 0
        for i in benchmark.scaledIterations
        where fixture.permissions.canSubscribe(fixture.filters[i % fixture.filters.count]).isAllowed {
            allowed &+= 1
        }
        blackHole(allowed)
    } setup: {
        try PolicyFixture()
    }

    // The broker's hot path: every PUB asks its connection's cache (target < 100 ns).
    Benchmark("policy: PublishCache.isAllowed (cached)", configuration: perOperation) { benchmark, fixture in
        var allowed = 0
        for i in benchmark.scaledIterations where fixture.cache.isAllowed(fixture.topics[i & 7]) {
            allowed &+= 1
        }
        blackHole(allowed)
    } setup: {
        try PolicyFixture()
    }
}
