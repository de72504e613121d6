import Foundation
import RelayCore
import Testing
@testable import RelayPolicy

/// Replays the kept fuzz corpus of relay-fuzz-policy-template through the
/// same input format and invariant checks as the fuzz target
/// (TemplateCorpus/ links to Fuzz/PolicyTemplate/), so `swift test` runs
/// what fuzzing found.
@Suite("Policy template fuzz corpus")
struct TemplateCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/policy-template")

    func replay(_ bytes: [UInt8]) -> [String] {
        let input = bytes.withUnsafeBytes { FuzzInput(text: String(decoding: $0, as: UTF8.self)) }
        var violations = PolicyInvariants.violations(fixedPolicy, input.identity)
        if let policy = try? Policy(definitions: input.rules, principal: input.principal) {
            violations += PolicyInvariants.violations(policy, input.identity)
        }
        return violations
    }

    @Test("every kept corpus input holds the no-widening invariants")
    func corpusReplays() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path)
        #expect(files.count >= 50, "the kept corpus at \(Self.corpus.path) is missing or was emptied")
        for file in files {
            let data = try Data(contentsOf: Self.corpus.appendingPathComponent(file))
            let violations = replay([UInt8](data))
            #expect(violations.isEmpty, "\(file): \(violations)")
        }
    }

    @Test("hostile attribute values are never substituted into an allow, and denies fail closed",
          arguments: ["a.b", "*", ">", "a*", "x>", "a b", "\t", "a\u{01}", "\u{7F}", "\r", "caf\u{E9}", "a.>"])
    func hostileValues(_ value: String) throws {
        let input = FuzzInput(text: "subject.CN=\(value)\nsubject.OU=\(value)\nsan.dns=\(value)\n")
        #expect(replay(Array("subject.CN=\(value)\nsubject.OU=\(value)\nsan.dns=\(value)\n".utf8)).isEmpty)
        let evaluation = fixedPolicy.evaluate(input.identity)
        // No templated allow survives: the only attribute values are hostile.
        let templated = (evaluation.publishAllow + evaluation.subscribeAllow).filter { $0.source.contains("{") }
        #expect(templated.isEmpty, "\(templated.map(\.filter.value))")
        // The templated denies are widened instead of dropped.
        #expect(evaluation.publishDeny.map(\.filter.value).contains("t.>"))
        #expect(evaluation.subscribeDeny.map(\.filter.value).contains("t.>"))
    }

    @Test("the invariant checks notice a value that is not the identity's")
    func checksCanFail() throws {
        // The same clean grant is valid for one identity and a violation for another:
        // the check compares against the identity's own values, not a pattern.
        let policy = try Policy(definitions: [RuleDefinition(name: "r", publish: ["t.{subject.CN}"])])
        let alice = FuzzInput(text: "subject.CN=alice\n").identity
        let grant = try #require(policy.evaluate(alice).publishAllow.first)
        #expect(PolicyInvariants.allowProblem(grant, alice) == nil)
        let bob = FuzzInput(text: "subject.CN=bob\n").identity
        #expect(PolicyInvariants.allowProblem(grant, bob) != nil)
    }
}
