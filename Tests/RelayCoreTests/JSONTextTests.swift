import Foundation
import RelayCore
import Testing

/// The one JSON escaper (logs, audit trail, `relay-sub --format json`),
/// pinned byte for byte. Two copies of it once disagreed: relay-sub's left
/// U+2028/U+2029, C1 controls and bidi overrides raw while the log's escaped
/// U+2028 but not the others. A copy that drifts from this output fails here.
@Suite("JSONText: the one JSON string escaper")
struct JSONTextTests {
    @Test("quotes, backslash and the named controls")
    func namedEscapes() {
        #expect(JSONText.quoted(#"say "hi" \ bye"#) == #""say \"hi\" \\ bye""#)
        #expect(JSONText.quoted("a\nb\tc\rd") == #""a\nb\tc\rd""#)
    }

    @Test("every other C0 control, DEL and C1 as \\u00XX, never by a short name")
    func controls() {
        #expect(JSONText.quoted("\u{0}\u{8}\u{C}\u{1B}\u{1F}") == #""\u0000\u0008\u000c\u001b\u001f""#)
        #expect(JSONText.quoted("\u{7F}\u{85}\u{9B}") == #""\u007f\u0085\u009b""#)
    }

    @Test("U+2028 and U+2029 are escaped, so no JSON or JavaScript reader sees a line break inside a value")
    func lineAndParagraphSeparators() {
        #expect(JSONText.quoted("a\u{2028}b\u{2029}c") == #""a\u2028b\u2029c""#)
    }

    @Test("bidi and other format characters are escaped; above the BMP as a surrogate pair")
    func formatCharacters() {
        #expect(JSONText.quoted("eve\u{202E}gpj.exe") == #""eve\u202egpj.exe""#)
        #expect(JSONText.quoted("\u{200B}\u{FEFF}\u{2066}") == #""\u200b\ufeff\u2066""#)
        #expect(JSONText.quoted("tag\u{E0041}") == #""tag\udb40\udc41""#)
    }

    @Test("letters, CJK and non-BMP emoji pass as UTF-8, unescaped")
    func printableTextIsUnchanged() {
        #expect(JSONText.quoted("Zoë 中文 😀 𝄞") == "\"Zoë 中文 😀 𝄞\"")
    }

    @Test("every value decodes back exactly, and the quoted text holds no unsafe scalar raw")
    func roundTrip() throws {
        var everything = "q\"b\\s/\n\t\r😀é"
        for value in [0x00, 0x08, 0x1F, 0x7F, 0x80, 0x9B, 0x9F, 0xAD, 0x2028, 0x2029, 0x202E, 0xFEFF, 0xE0001, 0xE007F] {
            everything.unicodeScalars.append(try #require(Unicode.Scalar(UInt32(value))))
        }
        let quoted = JSONText.quoted(everything)
        #expect(!DisplayText.containsUnsafe(quoted))
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as? [String]
        #expect(decoded == [everything])
    }
}
