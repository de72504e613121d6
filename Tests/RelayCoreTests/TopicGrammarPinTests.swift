import Testing
@testable import RelayCore

/// Pins the exact accept/reject verdict (including which rule and which
/// index) of the topic and filter grammar, so the wave-6 rewrite of the
/// validator for speed (issue 19) cannot change it. The table states the
/// expected verdicts explicitly; the differential test compares the
/// production code with ReferenceTopicGrammar (the b177363 validator) on
/// generated input.
@Suite("Topic grammar pinned")
struct TopicGrammarPinTests {
    static func topicVerdict(_ s: String) -> TopicError? {
        do { _ = try Topic(s); return nil } catch { return error }
    }
    static func topicBytesVerdict(_ b: [UInt8]) -> TopicError? {
        do { _ = try Topic(utf8: b); return nil } catch { return error }
    }
    static func filterVerdict(_ s: String) -> TopicError? {
        do { _ = try TopicFilter(s); return nil } catch { return error }
    }

    static let max255 = String(repeating: "a", count: 255)
    static let max32 = Array(repeating: "a", count: 32).joined(separator: ".")
    static let over32 = Array(repeating: "a", count: 33).joined(separator: ".")

    /// (input, verdict as a topic, verdict as a filter)
    static let table: [(String, TopicError?, TopicError?)] = [
        ("", .empty, .empty),
        ("a", nil, nil),
        ("a.b.c", nil, nil),
        ("orders.eu-west.created", nil, nil),
        ("A_9-z", nil, nil),
        ("_relay.events", nil, nil),
        (".", .emptyToken(index: 0), .emptyToken(index: 0)),
        (".a", .emptyToken(index: 0), .emptyToken(index: 0)),
        ("a.", .emptyToken(index: 1), .emptyToken(index: 1)),
        ("a..b", .emptyToken(index: 1), .emptyToken(index: 1)),
        ("..", .emptyToken(index: 0), .emptyToken(index: 0)),
        ("*", .wildcardInTopic(index: 0), nil),
        (">", .wildcardInTopic(index: 0), nil),
        ("a.*", .wildcardInTopic(index: 1), nil),
        ("a.>", .wildcardInTopic(index: 1), nil),
        ("*.b.>", .wildcardInTopic(index: 0), nil),
        ("a.*.c", .wildcardInTopic(index: 1), nil),
        ("a.>.c", .wildcardInTopic(index: 1), .misplacedWildcard(index: 1)),
        (">.a", .wildcardInTopic(index: 0), .misplacedWildcard(index: 0)),
        ("a*", .wildcardInTopic(index: 0), .misplacedWildcard(index: 0)),
        ("*a", .wildcardInTopic(index: 0), .misplacedWildcard(index: 0)),
        ("a>", .wildcardInTopic(index: 0), .misplacedWildcard(index: 0)),
        ("**", .wildcardInTopic(index: 0), .misplacedWildcard(index: 0)),
        (">>", .wildcardInTopic(index: 0), .misplacedWildcard(index: 0)),
        ("*>", .wildcardInTopic(index: 0), .misplacedWildcard(index: 0)),
        ("a.b*", .wildcardInTopic(index: 1), .misplacedWildcard(index: 1)),
        ("a.*.", .wildcardInTopic(index: 1), .emptyToken(index: 2)),
        ("a.>.", .wildcardInTopic(index: 1), .misplacedWildcard(index: 1)),
        ("a b", .invalidCharacter(byte: 0x20, index: 1), .invalidCharacter(byte: 0x20, index: 1)),
        (" a", .invalidCharacter(byte: 0x20, index: 0), .invalidCharacter(byte: 0x20, index: 0)),
        ("a/b", .invalidCharacter(byte: 0x2F, index: 1), .invalidCharacter(byte: 0x2F, index: 1)),
        ("$SYS", .invalidCharacter(byte: 0x24, index: 0), .invalidCharacter(byte: 0x24, index: 0)),
        ("a\u{0}b", .invalidCharacter(byte: 0, index: 1), .invalidCharacter(byte: 0, index: 1)),
        ("a\nb", .invalidCharacter(byte: 0x0A, index: 1), .invalidCharacter(byte: 0x0A, index: 1)),
        ("a\u{7F}", .invalidCharacter(byte: 0x7F, index: 1), .invalidCharacter(byte: 0x7F, index: 1)),
        ("é", .invalidCharacter(byte: 0xC3, index: 0), .invalidCharacter(byte: 0xC3, index: 0)),
        ("ab.é", .invalidCharacter(byte: 0xC3, index: 3), .invalidCharacter(byte: 0xC3, index: 3)),
        ("a.🙂", .invalidCharacter(byte: 0xF0, index: 2), .invalidCharacter(byte: 0xF0, index: 2)),
        ("a@.", .invalidCharacter(byte: 0x40, index: 1), .invalidCharacter(byte: 0x40, index: 1)),
        ("`{[:", .invalidCharacter(byte: 0x60, index: 0), .invalidCharacter(byte: 0x60, index: 0)),
        ("a..*", .emptyToken(index: 1), .emptyToken(index: 1)),
        (max255, nil, nil),
        (max255 + "a", .tooLong(length: 256), .tooLong(length: 256)),
        (max255 + " ", .tooLong(length: 256), .tooLong(length: 256)),
        (String(repeating: "é", count: 128), .tooLong(length: 256), .tooLong(length: 256)),
        (max32, nil, nil),
        (over32, .tooManyTokens(count: 33), .tooManyTokens(count: 33)),
        (max32 + ".", .tooManyTokens(count: 33), .tooManyTokens(count: 33)),
        (Array(repeating: "*", count: 32).joined(separator: "."), .wildcardInTopic(index: 0), nil),
        (Array(repeating: "*", count: 31).joined(separator: ".") + ".>", .wildcardInTopic(index: 0), nil),
        (Array(repeating: "*", count: 33).joined(separator: "."), .wildcardInTopic(index: 0), .tooManyTokens(count: 33)),
    ]

    @Test("table: topics, raw topic bytes and filters get the pinned verdict")
    func pinnedTable() {
        for (input, asTopic, asFilter) in Self.table {
            #expect(Self.topicVerdict(input) == asTopic, "topic \(input.debugDescription)")
            #expect(Self.topicBytesVerdict(Array(input.utf8)) == asTopic, "topic bytes \(input.debugDescription)")
            #expect(Self.filterVerdict(input) == asFilter, "filter \(input.debugDescription)")
        }
    }

    @Test("invalid UTF-8 and lone bytes through Topic(utf8:) are refused at the first bad byte")
    func invalidUTF8Bytes() {
        let cases: [([UInt8], TopicError?)] = [
            ([0xFF], .invalidCharacter(byte: 0xFF, index: 0)),
            ([0x61, 0x80], .invalidCharacter(byte: 0x80, index: 1)),
            ([0x61, 0x2E, 0xC3], .invalidCharacter(byte: 0xC3, index: 2)),
            ([0x61, 0x00], .invalidCharacter(byte: 0x00, index: 1)),
            ([0x61, 0x2E, 0x62], nil),
            ([], .empty),
            (Array(repeating: 0x80, count: 256), .tooLong(length: 256)),
        ]
        // Every single byte, alone and inside a token, gets the reference verdict (the byte class).
        for b in UInt8.min...UInt8.max {
            for bytes in [[b], [0x61, b, 0x61], [0x61, 0x2E, b]] {
                #expect(Self.topicBytesVerdict(bytes) == ReferenceTopicGrammar.verdict(bytes, allowWildcards: false))
                let filter = String(decoding: bytes, as: UTF8.self)
                #expect(Self.filterVerdict(filter) == ReferenceTopicGrammar.verdict(filter.utf8, allowWildcards: true))
            }
        }
        for (bytes, expected) in cases {
            #expect(Self.topicBytesVerdict(bytes) == expected, "bytes \(bytes)")
            #expect(Self.topicBytesVerdict(bytes) == ReferenceTopicGrammar.verdict(bytes, allowWildcards: false))
        }
    }

    /// Deterministic generator (SplitMix64) so a failure reproduces.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_14EB
            return z ^ (z >> 31)
        }
    }

    /// Mostly grammar-shaped pieces (so many inputs are valid or fail late),
    /// plus every kind of bad byte.
    static let pieces: [String] = [
        "a", "Z", "0", "9", "_", "-", "abc", "orders", "eu-west", "x_1", ".", ".", ".", "*", ">",
        " ", "\u{0}", "\n", "\t", "\u{7F}", "é", "🙂", "/", "$", "#", "+", "`", "{", "@", "[", ":",
    ]

    static func generated(count: Int, seed: UInt64) -> [String] {
        var rng = SplitMix(state: seed)
        var out: [String] = []
        for _ in 0..<count {
            var s = ""
            // Up to ~300 bytes, so the 255-byte limit and the 32-token limit both get crossed.
            let pieceCount = Int.random(in: 0...70, using: &rng)
            for _ in 0..<pieceCount {
                // Bias towards letters and dots: any piece (bad bytes included) 1 time in 16.
                if Int.random(in: 0..<16, using: &rng) == 0 {
                    s += pieces.randomElement(using: &rng) ?? "a"
                } else {
                    s += Int.random(in: 0..<4, using: &rng) == 0 ? "." : (pieces[0..<10].randomElement(using: &rng) ?? "a")
                }
            }
            out.append(s)
        }
        return out
    }

    @Test("differential: same verdict and tokens as the b177363 validator on 6,000 generated inputs")
    func differential() throws {
        var accepted = 0, refused = 0
        for s in Self.generated(count: 6_000, seed: 0x7019) {
            let refTopic = ReferenceTopicGrammar.verdict(s.utf8, allowWildcards: false)
            let refFilter = ReferenceTopicGrammar.verdict(s.utf8, allowWildcards: true)
            #expect(Self.topicVerdict(s) == refTopic, "topic \(s.debugDescription)")
            #expect(Self.topicBytesVerdict(Array(s.utf8)) == refTopic, "topic bytes \(s.debugDescription)")
            #expect(Self.filterVerdict(s) == refFilter, "filter \(s.debugDescription)")
            if refTopic == nil {
                let topic = try Topic(s)
                #expect(topic.value == s)
                #expect(topic.tokens == ReferenceTopicGrammar.tokens(s))
            }
            if refFilter == nil {
                let filter = try TopicFilter(s)
                #expect(filter.value == s)
                #expect(filter.tokens.count == ReferenceTopicGrammar.tokens(s).count)
            }
            if refFilter == nil { accepted += 1 } else { refused += 1 }
        }
        // The generator must exercise both outcomes, or the comparison proves little.
        #expect(accepted > 300, "only \(accepted) generated inputs were valid filters")
        #expect(refused > 300, "only \(refused) generated inputs were refused")
    }

    @Test("differential: Topic(utf8:) on 4,000 random byte strings, invalid UTF-8 included")
    func differentialBytes() {
        var rng = SplitMix(state: 0x19_0B17)
        let alphabet: [UInt8] = Array("aZ09_-.*>".utf8) + [0x00, 0x20, 0x7F, 0x80, 0xC3, 0xFF, 0x2F]
        for _ in 0..<4_000 {
            let n = Int.random(in: 0...270, using: &rng)
            var bytes: [UInt8] = []
            for _ in 0..<n {
                // Mostly valid bytes so that failures also happen late in the input.
                let b = Int.random(in: 0..<40, using: &rng) == 0
                    ? (alphabet.randomElement(using: &rng) ?? 0) : (alphabet[0..<7].randomElement(using: &rng) ?? 0x61)
                bytes.append(b)
            }
            let expected = ReferenceTopicGrammar.verdict(bytes, allowWildcards: false)
            #expect(Self.topicBytesVerdict(bytes) == expected, "bytes \(bytes)")
        }
    }
}
