import RelayTestSupport
import Testing
import RelayCore
@testable import RelayPolicy

/// One generated case: an identity with hostile values, the same identity
/// with them removed, and a policy.
struct GeneratedCase {
    var dirty: Identity
    var clean: Identity
    var rules: [RuleDefinition]
    var tokens: [String]   // tokens to build probe topics from
}

enum Generator {
    static let alphabet = Array("abc01-_")
    static let hostileBits = [".", "*", ">", " ", "\n", "\t", "#", "+", "\u{0}", "\u{7F}", "é", "/", "{", "}"]
    static let templates = ["{subject.CN}", "{subject.OU}", "{san.dns}", "{spiffe.path[0]}", "{spiffe.path[1]}", "{spiffe.path[2]}"]

    static func token(_ r: inout SeededRandom) -> String {
        String((0..<Int.random(in: 1...2, using: &r)).map { _ in alphabet.randomElement(using: &r) ?? "a" })
    }

    static func hostile(_ r: inout SeededRandom) -> String {
        switch Int.random(in: 0..<6, using: &r) {
        case 0: return ""
        case 1: return hostileBits.randomElement(using: &r) ?? "."
        default:
            var chars = Array(token(&r))
            let bit = hostileBits.randomElement(using: &r) ?? "."
            chars.insert(contentsOf: bit, at: Int.random(in: 0...chars.count, using: &r))
            if Bool.random(using: &r) { chars += Array(token(&r)) }
            return String(chars)
        }
    }

    /// Values for one attribute: some clean, some hostile; returns (dirty, clean).
    static func values(_ r: inout SeededRandom) -> ([String], [String]) {
        var dirty: [String] = [], clean: [String] = []
        for _ in 0..<Int.random(in: 0...3, using: &r) {
            if Int.random(in: 0..<3, using: &r) == 0 {
                dirty.append(hostile(&r))
            } else {
                let t = token(&r)
                dirty.append(t)
                clean.append(t)
            }
        }
        return (dirty, clean)
    }

    static func filter(_ r: inout SeededRandom) -> String {
        var parts: [String] = []
        for _ in 0..<Int.random(in: 1...3, using: &r) {
            switch Int.random(in: 0..<5, using: &r) {
            case 0: parts.append("*")
            case 1, 2: parts.append(templates.randomElement(using: &r) ?? "{subject.CN}")
            default: parts.append(token(&r))
            }
        }
        if Int.random(in: 0..<3, using: &r) == 0 { parts.append(">") }
        return parts.joined(separator: ".")
    }

    static func generate(_ r: inout SeededRandom) -> GeneratedCase {
        let (cnD, cnC) = values(&r), (ouD, ouC) = values(&r), (dnsD, dnsC) = values(&r)
        // SPIFFE segments may only carry '.' (SPIFFEID refuses the rest);
        // only the last may be hostile, so removing it shifts no index.
        var segments = (0..<Int.random(in: 0...3, using: &r)).map { _ in token(&r) }
        var cleanSegments = segments
        if !segments.isEmpty && Bool.random(using: &r) {
            segments[segments.count - 1] = token(&r) + "." + token(&r)
            cleanSegments.removeLast()
        }
        let td = Bool.random(using: &r) ? "prod" : "dev"
        let issuer = Bool.random(using: &r) ? "A" : "B"
        func spiffe(_ s: [String]) -> String { "spiffe://\(td)" + s.map { "/" + $0 }.joined() }
        let dirty = Fixture.identity(cn: cnD, ou: ouD, issuerO: issuer, dns: dnsD, spiffe: spiffe(segments))
        let clean = Fixture.identity(cn: cnC, ou: ouC, issuerO: issuer, dns: dnsC, spiffe: spiffe(cleanSegments))

        var rules: [RuleDefinition] = []
        for i in 0..<Int.random(in: 1...4, using: &r) {
            var match: [String: [String]] = [:]
            switch Int.random(in: 0..<4, using: &r) {
            case 0: match["issuer.O"] = [Bool.random(using: &r) ? "A" : "*"]
            case 1: match["spiffe.trust_domain"] = ["p*"]
            default: break
            }
            func list() -> [String] { (0..<Int.random(in: 0...3, using: &r)).map { _ in filter(&r) } }
            var rule = RuleDefinition(name: "r\(i)", match: match, publish: list(), subscribe: list(),
                                      denyPublish: Int.random(in: 0..<3, using: &r) == 0 ? list() : [],
                                      denySubscribe: Int.random(in: 0..<3, using: &r) == 0 ? list() : [])
            if rule.publish.isEmpty && rule.subscribe.isEmpty { rule.publish = [filter(&r)] }
            rules.append(rule)
        }
        // Sorted: a Set's order changes from run to run (per-process hash seed),
        // and a seed must generate the same case every time.
        var pool = Set(cnD + ouD + dnsD + segments).sorted().flatMap { $0.split(separator: ".").map(String.init) }
        pool += (0..<4).map { _ in token(&r) }
        return GeneratedCase(dirty: dirty, clean: clean, rules: rules, tokens: pool.filter { (try? Topic($0)) != nil })
    }
}

@Suite("Property: hostile attribute values never widen permissions")
struct PropertyTests {
    @Test("dirty identity's permissions are within the clean identity's", arguments: [UInt64(0x5EED), 0xC0FFEE, 7650])
    func neverWider(seed: UInt64) throws {
        var r = SeededRandom(seed: seed)
        var checkedTopics = 0, allowedSomething = 0
        for iteration in 0..<1_000 {
            let c = Generator.generate(&r)
            let policy = try Policy(definitions: c.rules)
            let dirty = policy.permissions(for: c.dirty), clean = policy.permissions(for: c.clean)
            let context = "seed \(seed) iteration \(iteration) rules \(c.rules)"

            // Structural: every allow the dirty identity has, the clean one has too…
            #expect(Set(dirty.publishFilters).isSubset(of: clean.publishFilters), "\(context)")
            #expect(Set(dirty.subscribeFilters).isSubset(of: clean.subscribeFilters), "\(context)")
            // …and every deny of the clean identity is covered by a deny of the dirty one.
            for deny in clean.publishDeny {
                #expect(dirty.publishDeny.contains { deny.filter.isSubset(of: $0.filter) }, "\(context)")
            }
            for deny in clean.subscribeDeny {
                #expect(dirty.subscribeDeny.contains { deny.filter.isSubset(of: $0.filter) }, "\(context)")
            }
            // No allow token is anything but a valid token (the grammar held).
            for grant in dirty.publishAllow + dirty.subscribeAllow {
                #expect((try? TopicFilter(grant.filter.value)) != nil)
            }

            // Behavioural: probe topics and filters.
            for _ in 0..<8 {
                let tokens = (0..<Int.random(in: 1...4, using: &r)).map { _ in c.tokens.randomElement(using: &r) ?? "a" }
                let t = try Topic(tokens.joined(separator: "."))
                if dirty.canPublish(t).isAllowed {
                    allowedSomething += 1
                    #expect(clean.canPublish(t).isAllowed, "\(context) topic \(t)")
                }
                var filterTokens = tokens
                if Bool.random(using: &r) { filterTokens[Int.random(in: 0..<filterTokens.count, using: &r)] = "*" }
                if Bool.random(using: &r) { filterTokens.append(">") }
                let f = try TopicFilter(filterTokens.joined(separator: "."))
                if dirty.canSubscribe(f).isAllowed {
                    #expect(clean.canSubscribe(f).isAllowed, "\(context) filter \(f)")
                }
                checkedTopics += 1
            }
        }
        // The generator must actually produce allowed publishes, or the property is vacuous.
        #expect(allowedSomething > 100)
        #expect(checkedTopics == 8_000)
    }

    @Test("with only clean values, templated grants are exactly the substitutions")
    func cleanSubstitution() throws {
        var r = SeededRandom(seed: 42)
        for _ in 0..<500 {
            let cn = Generator.token(&r), ou = Generator.token(&r)
            let rule = RuleDefinition(name: "t", publish: ["x.{subject.CN}.{subject.OU}.>"])
            let p = try Fixture.policy(rule).permissions(for: Fixture.identity(cn: [cn], ou: [ou]))
            #expect(p.publishFilters == ["x.\(cn).\(ou).>"])
            #expect(p.droppedTemplates.isEmpty)
        }
    }
}
