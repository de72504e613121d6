import Foundation
import Testing
import RelayCore
@testable import RelayPolicy

/// Bidi controls (U+202E …), C1 controls (U+009B …) and other Unicode
/// format characters in certificate names: never part of a principal or a
/// topic token, never shown raw.
@Suite("Unsafe characters in certificate names")
struct UnsafeNameTests {
    static let unsafe: [String] = ["\u{202E}", "\u{009B}", "\u{200E}", "\u{200F}", "\u{202A}", "\u{2066}", "\u{2069}",
                                   "\u{0085}", "\u{200B}", "\u{FEFF}", "\u{061C}", "\u{2028}"]
    static let open = RuleDefinition(name: "public", publish: ["public.>"])

    @Test("a principal attribute holding one is refused, naming the code point", arguments: unsafe)
    func principalRefused(_ scalar: String) throws {
        let policy = try Fixture.policy(Self.open, principal: "{subject.CN}")
        let p = policy.permissions(for: Fixture.identity(cn: ["eve\(scalar)gpj"]))
        #expect(p.isRefused, "U+\(String(scalar.unicodeScalars.first?.value ?? 0, radix: 16))")
        let code = String(format: "U+%04X", scalar.unicodeScalars.first?.value ?? 0)
        #expect(p.refusal?.contains(code) == true, "\(String(describing: p.refusal))")
        #expect(!DisplayText.containsUnsafe(p.refusal ?? ""))
    }

    @Test("a template value holding one is never substituted; the drop names the code point", arguments: unsafe)
    func templateRefused(_ scalar: String) throws {
        let rule = RuleDefinition(name: "own", publish: ["clients.{subject.CN}.>", "fixed"])
        let p = try Fixture.policy(rule).permissions(for: Fixture.identity(cn: ["eve\(scalar)"]))
        #expect(p.publishFilters == ["fixed"])
        let drop = try #require(p.droppedTemplates.first)
        let code = String(format: "U+%04X", scalar.unicodeScalars.first?.value ?? 0)
        #expect(drop.reason.contains(code), "\(drop.reason)")
        #expect(!DisplayText.containsUnsafe(drop.description))
    }

    @Test("the RFC 4514 subject escapes C1 and format characters as UTF-8 hex pairs")
    func rfc4514Escapes() {
        let identity = Fixture.identity(cn: ["a\u{202E}b"], ou: ["x\u{009B}y"])
        #expect(identity.subject.rfc4514 == "CN=a\\E2\\80\\AEb,OU=x\\C2\\9By")
        // Ordinary non-ASCII letters stay as they are.
        #expect(Fixture.identity(cn: ["Zoë"]).subject.rfc4514 == "CN=Zoë")
    }

    @Test("the default principal ({subject}) of a subject holding one is the escaped RFC 4514 string")
    func defaultPrincipalEscaped() throws {
        let p = try Fixture.policy(Self.open).permissions(for: Fixture.identity(cn: ["carol"], ou: ["ops\u{202E}x"]))
        #expect(!p.isRefused)
        #expect(p.principal == "CN=carol,OU=ops\\E2\\80\\AEx")
    }

    @Test("an attribute no template or principal uses does not refuse the identity")
    func unusedAttributeAllowed() throws {
        let policy = try Fixture.policy(RuleDefinition(name: "own", publish: ["clients.{subject.CN}.>"]), principal: "{subject.CN}")
        let p = policy.permissions(for: Fixture.identity(cn: ["carol"], ou: ["ops\u{202E}x"]))
        #expect(!p.isRefused)
        #expect(p.principal == "carol")
        #expect(try p.allows(publish: "clients.carol.x"))
    }

    @Test("explain output holds no raw unsafe scalar", arguments: unsafe)
    func explainEscapes(_ scalar: String) throws {
        let policy = try Fixture.policy(RuleDefinition(name: "own", match: ["subject.OU": ["*"]], publish: ["c.{subject.CN}"]))
        let text = policy.explain(Fixture.identity(cn: ["e\(scalar)"], ou: ["o\(scalar)"])).renderText()
        #expect(!DisplayText.containsUnsafe(text.replacingOccurrences(of: "\n", with: "")), "\(DisplayText.escaped(text))")
    }
}
