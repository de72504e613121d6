// relay-bench-policy: how fast RelayPolicy decides, with 1,000 rules.
//
//   swift build -c release --scratch-path .build-policy --product relay-bench-policy
//   .build-policy/release/relay-bench-policy
//
// Prints per-connection evaluations per second, uncached publish and
// subscribe decisions per second, and the cost of a cached publish check
// (the broker's hot path; the target is < 100 ns).
import Foundation
import RelayCore
import RelayPolicy

let ruleCount = 1_000

func name(_ pairs: [(String, String, String)]) -> DistinguishedName {
    DistinguishedName(rdns: pairs.map { [.init(oid: $0.1, shortName: $0.0, value: $0.2)] })
}

func identity(_ i: Int) -> Identity {
    Identity(subject: name([("O", "2.5.4.10", "Example"), ("OU", "2.5.4.11", "team-\(i)"), ("CN", "2.5.4.3", "svc-\(i)-api")]),
             issuer: name([("O", "2.5.4.10", "Relay CA")]), serialNumber: "\(i)",
             notBefore: Date(timeIntervalSince1970: 0), notAfter: Date(timeIntervalSince1970: 4e9),
             fingerprintSHA256: "00", sans: SubjectAlternativeNames(dns: ["svc-\(i)"]),
             spiffe: SPIFFEID(uri: "spiffe://prod/ns/team-\(i)/sa/api"))
}

/// `indexable`: half exact, half prefix-glob conditions (the rule index
/// narrows them). Otherwise suffix globs, which the index cannot use, so
/// every rule's conditions are checked: the worst case.
func makePolicy(indexable: Bool = true) throws -> Policy {
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

@inline(never) func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

func measure(_ label: String, iterations: Int, unit: String = "op", _ body: () -> Int) -> Double {
    let clock = ContinuousClock()
    var sink = 0
    let elapsed = clock.measure { sink = body() }
    consume(sink)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let ns = seconds * 1e9 / Double(iterations)
    let perSecond = Double(iterations) / seconds
    print(String(format: "%-52@ %12.0f %@/s  %10.1f ns/%@", label as NSString, perSecond, unit, ns, unit))
    return ns
}

do {
    let policy = try makePolicy()
    let identities = (0..<ruleCount).map(identity)
    print("policy: \(policy.rules.count) rules; identities: \(identities.count)")

    // 1. Per-connection evaluation: every rule's conditions, templating, dedup.
    let connections = 20_000
    _ = measure("Permissions per connection (1,000 rules, indexed)", iterations: connections, unit: "conn") {
        var n = 0
        for k in 0..<connections { n &+= policy.permissions(for: identities[k % identities.count]).publishAllow.count }
        return n
    }
    let scanned = try makePolicy(indexable: false)
    let scans = 2_000
    _ = measure("Permissions per connection (1,000 rules, full scan)", iterations: scans, unit: "conn") {
        var n = 0
        for k in 0..<scans { n &+= scanned.permissions(for: identities[k % identities.count]).publishAllow.count }
        return n
    }

    let who = 500
    let permissions = policy.permissions(for: identities[who])
    let topics = try [
        "team500.svc-500-api.orders.created", "team500.svc-500-api.admin", "shared.500.x", "metrics.svc-500-api",
        "team501.svc-501-api.x", "shared.7.x", "broadcast.news", "team500.svc-500-api.a.b.c",
    ].map(Topic.init)
    let filters = try ["team500.>", "team500.secret.x", "shared.*.*", "shared.1.*", "broadcast.a.>", "team1.>"].map(TopicFilter.init)

    // 2. Raw (uncached) decisions on that connection's permissions.
    let raw = 2_000_000
    _ = measure("uncached canPublish (split topic + filter scan)", iterations: raw, unit: "check") {
        var n = 0
        for k in 0..<raw where permissions.canPublish(topics[k & 7]).isAllowed { n &+= 1 }
        return n
    }
    _ = measure("uncached canSubscribe (subset + intersect scan)", iterations: raw, unit: "check") {
        var n = 0
        for k in 0..<raw where permissions.canSubscribe(filters[k % filters.count]).isAllowed { n &+= 1 }
        return n
    }

    // 3. The hot path: the per-connection cache, 8 distinct topics.
    var cache = PublishCache(permissions: permissions)
    let cached = 20_000_000
    let ns = measure("cached publish check (PublishCache.isAllowed)", iterations: cached, unit: "check") {
        var n = 0
        for k in 0..<cached where cache.isAllowed(topics[k & 7]) { n &+= 1 }
        return n
    }
    print(String(format: "cached publish check: %.1f ns (target < 100 ns): %@", ns, ns < 100 ? "OK" : "OVER TARGET"))
} catch {
    print("relay-bench-policy: \(error)")
    exit(2)
}
