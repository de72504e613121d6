import RelayTestSupport
import Testing
import RelayCore
@testable import RelayPolicy

/// The rule index is a prefilter: it must never hide a rule that applies.
@Suite("Rule index")
struct RuleIndexTests {
    static let values = ["a", "ab", "abc", "b", "ba", "caf\u{E9}", "cafe\u{301}", "x-1", "x-12", "", "é*"]
    static let patterns = ["a", "ab", "a*", "ab*", "*b", "a*c", "*", "caf\u{E9}", "cafe\u{301}", "caf*", "x-1*", "x-*2", "b", "é*"]
    static let keys = ["subject.CN", "subject.OU", "issuer.O", "san.dns"]

    @Test("indexed evaluation applies exactly the rules a full scan applies", arguments: [UInt64(1), 2, 3])
    func sameAsFullScan(seed: UInt64) throws {
        var r = SeededRandom(seed: seed)
        func pick(_ list: [String]) -> String { list.randomElement(using: &r) ?? "a" }
        var nonEmpty = 0
        for _ in 0..<300 {
            var rules: [RuleDefinition] = []
            for i in 0..<Int.random(in: 1...12, using: &r) {
                var match: [String: [String]] = [:]
                for _ in 0..<Int.random(in: 0...2, using: &r) {
                    match[pick(Self.keys)] = (0..<Int.random(in: 1...3, using: &r)).map { _ in pick(Self.patterns) }
                }
                rules.append(RuleDefinition(name: "r\(i)", match: match, publish: ["t\(i)"]))
            }
            let policy = try Policy(definitions: rules)
            for _ in 0..<10 {
                func some() -> [String] { (0..<Int.random(in: 0...2, using: &r)).map { _ in pick(Self.values) } }
                let id = Fixture.identity(cn: some(), ou: some(), issuerO: pick(Self.values), dns: some())
                let full = policy.rules.filter { $0.applies(to: id) }.map(\.name)
                #expect(policy.evaluate(id).matchedRules == full, "rules \(rules) identity \(id)")
                #expect(policy.explain(id).rules.filter(\.matched).map(\.name) == full)
                if !full.isEmpty { nonEmpty += 1 }
            }
        }
        #expect(nonEmpty > 500)   // the generator produces matches, so the check is not vacuous
    }

    @Test("rules found through several values are evaluated once, in policy order")
    func orderAndDuplicates() throws {
        let policy = try Policy(definitions: [
            RuleDefinition(name: "z", match: ["subject.OU": ["a", "b"]], publish: ["z"]),
            RuleDefinition(name: "glob", match: ["subject.OU": ["*"]], publish: ["g"]),
            RuleDefinition(name: "y", match: ["subject.OU": ["a*", "b"]], publish: ["y"]),
        ])
        let e = policy.evaluate(Fixture.identity(ou: ["a", "b", "ab"]))
        #expect(e.matchedRules == ["z", "glob", "y"])
        #expect(e.publishAllow.map(\.filter.value) == ["z", "g", "y"])
    }
}
