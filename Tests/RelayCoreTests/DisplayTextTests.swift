import Testing
import RelayCore

@Suite("DisplayText: showing untrusted names")
struct DisplayTextTests {
    /// Every class the rule covers, with one member each at least.
    static let unsafe: [UInt32] = [0x00, 0x0A, 0x1B, 0x7F, 0x80, 0x85, 0x9B, 0x9F, 0xAD, 0x061C, 0x200B, 0x200E, 0x200F,
                                   0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2028, 0x2029, 0x2060, 0x2066, 0x2067,
                                   0x2068, 0x2069, 0xFEFF, 0xE0001]
    static let safe: [UInt32] = [0x20, 0x41, 0x7E, 0xA0, 0xE9, 0x00FC, 0x05D0, 0x4E2D, 0x1F600]

    @Test("C0, DEL, C1, every Cf (bidi, zero-width, BOM, tags) and U+2028/9 are unsafe; letters and emoji are not")
    func classification() throws {
        for value in Self.unsafe {
            let scalar = try #require(Unicode.Scalar(value))
            #expect(DisplayText.isUnsafe(scalar), "U+\(String(value, radix: 16))")
        }
        for value in Self.safe {
            let scalar = try #require(Unicode.Scalar(value))
            #expect(!DisplayText.isUnsafe(scalar), "U+\(String(value, radix: 16))")
        }
    }

    @Test("escaped shows unsafe scalars as \\u{X} and leaves everything else alone")
    func escaped() {
        #expect(DisplayText.escaped("eve\u{202E}gpj.exe") == #"eve\u{202E}gpj.exe"#)
        #expect(DisplayText.escaped("x\u{009B}31m") == #"x\u{9B}31m"#)
        #expect(DisplayText.escaped("a\nb") == #"a\u{A}b"#)
        #expect(DisplayText.escaped("Zoë 中文 😀 a\\b") == "Zoë 中文 😀 a\\b")
        #expect(!DisplayText.containsUnsafe(DisplayText.escaped("\u{2066}\u{E0001}\u{FEFF}")))
    }

    @Test("quoted escapes quotes, backslashes and unsafe scalars, so a value cannot end early")
    func quoted() {
        #expect(DisplayText.quoted("a\"b\\c\nd\u{202E}") == #""a\"b\\c\nd\u{202E}""#)
        #expect(DisplayText.firstUnsafe("ok\u{200F}x").map(DisplayText.codePoint) == "U+200F")
        #expect(DisplayText.codePoint("\u{9B}") == "U+009B")
    }

    @Test("RFC 4514 escapes unsafe scalars as UTF-8 hex pairs, so a DN string never holds one raw")
    func distinguishedName() {
        let name = DistinguishedName(rdns: [[.init(oid: "2.5.4.11", shortName: "OU", value: "x\u{9B}y")],
                                            [.init(oid: "2.5.4.3", shortName: "CN", value: "a\u{202E}b\nc")]])
        #expect(name.rfc4514 == #"CN=a\E2\80\AEb\0Ac,OU=x\C2\9By"#)
        #expect(!DisplayText.containsUnsafe(name.rfc4514))
        #expect(DistinguishedName.escape("Zoë") == "Zoë")
    }
}
