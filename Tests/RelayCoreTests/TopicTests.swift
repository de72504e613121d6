import Testing
@testable import RelayCore

@Suite("Topic grammar")
struct TopicTests {
    @Test("valid topics", arguments: ["a", "a.b.c", "orders.eu-west.created", "A_9-z", "_relay.events"])
    func valid(_ s: String) throws {
        let topic = try Topic(s)
        #expect(topic.value == s)
    }

    @Test("empty topic")
    func empty() { #expect(throws: TopicError.empty) { try Topic("") } }

    @Test("empty tokens", arguments: [(".a", 0), ("a.", 1), ("a..b", 1), (".", 0)])
    func emptyTokens(_ s: String, _ index: Int) {
        #expect(throws: TopicError.emptyToken(index: index)) { try Topic(s) }
    }

    @Test("wildcards are refused in published topics", arguments: [("*", 0), ("a.*", 1), (">", 0), ("a.b.>", 2)])
    func wildcardInTopic(_ s: String, _ index: Int) {
        #expect(throws: TopicError.wildcardInTopic(index: index)) { try Topic(s) }
    }

    @Test("characters outside A-Z a-z 0-9 _ -", arguments: ["a b", "a/b", "a#", "a+b", "é", "a\u{0}b", "a\nb", "$SYS"])
    func invalidCharacters(_ s: String) {
        #expect {
            try Topic(s)
        } throws: { error in
            if case .invalidCharacter = error as? TopicError { return true }
            return false
        }
    }

    @Test("maximum length is 255 bytes")
    func maxLength() throws {
        let atLimit = String(repeating: "a", count: Topic.maxLength)
        #expect(try Topic(atLimit).value.utf8.count == 255)
        #expect(throws: TopicError.tooLong(length: 256)) { try Topic(atLimit + "a") }
    }

    @Test("maximum token count is 32")
    func maxTokens() throws {
        let atLimit = Array(repeating: "t", count: Topic.maxTokens).joined(separator: ".")
        #expect(try Topic(atLimit).tokens.count == 32)
        #expect(throws: TopicError.tooManyTokens(count: 33)) { try Topic(atLimit + ".t") }
    }

    @Test("reserved prefix")
    func reserved() throws {
        #expect(try Topic("_relay.x").isReserved)
        #expect(try !Topic("relay._x").isReserved)
    }

    @Test("bytes initializer validates the same way")
    func bytes() throws {
        #expect(try Topic(utf8: Array("a.b".utf8)).value == "a.b")
        #expect(throws: TopicError.invalidCharacter(byte: 0xFF, index: 1)) { try Topic(utf8: [0x61, 0xFF]) }
    }

    @Test("every error describes the rule it breaks")
    func descriptions() {
        let errors: [TopicError] = [.empty, .tooLong(length: 300), .tooManyTokens(count: 40), .emptyToken(index: 0),
                                    .invalidCharacter(byte: 0x20, index: 1), .wildcardInTopic(index: 0),
                                    .misplacedWildcard(index: 0)]
        for e in errors { #expect(!e.description.isEmpty) }
        #expect(TopicError.tooLong(length: 300).description.contains("255"))
    }
}

@Suite("Topic filter grammar and matching")
struct TopicFilterTests {
    func t(_ s: String) throws -> Topic { try Topic(s) }
    func f(_ s: String) throws -> TopicFilter { try TopicFilter(s) }

    @Test("valid filters", arguments: [">", "*", "a.*", "*.b", "a.*.c", "*.*.*", "a.>", "*.>", "a"])
    func valid(_ s: String) throws { #expect(try f(s).value == s) }

    @Test("misplaced wildcards", arguments: [(">.a", 0), ("a.>.b", 1), ("a*", 0), ("*a", 0), ("a.b>", 1), ("**", 0), (">>", 0)])
    func misplaced(_ s: String, _ index: Int) {
        #expect(throws: TopicError.misplacedWildcard(index: index)) { try TopicFilter(s) }
    }

    @Test("filter empty tokens", arguments: ["", "a..*", "*.", ".>"])
    func emptyTokens(_ s: String) {
        #expect(throws: (any Error).self) { try TopicFilter(s) }
    }

    @Test("'>' alone matches every topic of one or more tokens")
    func fullWildcardAlone() throws {
        let all = try f(">")
        for s in ["a", "a.b", "a.b.c.d", "_relay.x"] { #expect(all.matches(try t(s))) }
    }

    @Test("'>' needs at least one token")
    func fullWildcardNeedsToken() throws {
        #expect(!(try f("a.>").matches(try t("a"))))
        #expect(try f("a.>").matches(try t("a.b")))
        #expect(try f("a.>").matches(try t("a.b.c")))
        #expect(!(try f("a.>").matches(try t("b.c"))))
    }

    @Test("'*' in every position matches exactly one token")
    func singleWildcardPositions() throws {
        #expect(try f("*.b.c").matches(try t("a.b.c")))
        #expect(try f("a.*.c").matches(try t("a.b.c")))
        #expect(try f("a.b.*").matches(try t("a.b.c")))
        #expect(!(try f("a.b.*").matches(try t("a.b"))))
        #expect(!(try f("a.b.*").matches(try t("a.b.c.d"))))
        #expect(!(try f("*").matches(try t("a.b"))))
        #expect(try f("*").matches(try t("a")))
        #expect(try f("*.*.*").matches(try t("x.y.z")))
        #expect(!(try f("a.*.c").matches(try t("a.b.d"))))
    }

    @Test("literal filters match only their topic; matching is case-sensitive")
    func literal() throws {
        #expect(try f("a.b").matches(try t("a.b")))
        #expect(!(try f("a.b").matches(try t("a.B"))))
        #expect(!(try f("a.b").matches(try t("a.b.c"))))
        #expect(try f("a.b").isLiteral)
        #expect(!(try f("a.*").isLiteral))
        #expect(TopicFilter(exactly: try t("x.y")) == (try f("x.y")))
    }

    @Test("maximum length and token count apply to filters")
    func filterLimits() throws {
        let atLimit = Array(repeating: "*", count: Topic.maxTokens).joined(separator: ".")
        #expect(try f(atLimit).tokens.count == 32)
        #expect(throws: TopicError.tooManyTokens(count: 33)) { try TopicFilter(atLimit + ".>") }
        #expect(throws: TopicError.tooLong(length: 256)) { try TopicFilter(String(repeating: "a", count: 256)) }
    }

    @Test("subset", arguments: [
        ("a.b", "a.b", true), ("a.b", "a.*", true), ("a.*", "a.b", false), ("a.b.c", "a.>", true),
        ("a.>", "a.>", true), ("a.>", "a.*", false), ("a.*", "a.>", true), ("a", "a.>", false),
        (">", ">", true), ("a.b", ">", true), (">", "a.>", false), ("*.b", "*.*", true), ("*.*", "*.b", false),
        ("a.*.c", "a.>", true), ("a.b", "a.b.c", false), ("a.b.c", "a.b", false), ("*", ">", true),
    ])
    func subset(_ a: String, _ b: String, _ expected: Bool) throws {
        #expect(try f(a).isSubset(of: try f(b)) == expected)
    }

    @Test("intersection", arguments: [
        ("a.b", "a.b", true), ("a.b", "a.c", false), ("a.*", "*.b", true), ("a.>", "a", false),
        ("a.>", "a.b.c", true), (">", "x", true), ("*", "a.b", false), ("a.*.c", "a.b.*", true),
        ("a.*", "b.>", false), ("a.*", "a.b.c", false),
    ])
    func intersection(_ a: String, _ b: String, _ expected: Bool) throws {
        #expect(try f(a).intersects(try f(b)) == expected)
        #expect(try f(b).intersects(try f(a)) == expected)
    }
}

@Suite("Error codes")
struct ErrorCodeTests {
    @Test("connection-level codes are below 0x100, names unique")
    func codes() {
        #expect(RelayErrorCode.frameTooLarge.closesConnection)
        #expect(!RelayErrorCode.notAuthorized.closesConnection)
        #expect(!RelayErrorCode.storageFull.closesConnection)
        let names = RelayErrorCode.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        for code in RelayErrorCode.allCases { #expect(!code.explanation.isEmpty) }
    }
}
