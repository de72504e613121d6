import Testing
import RelayCore

/// `DisplayText.quoted` and `DistinguishedName.escape` return plain ASCII
/// text without looking at each scalar (a fast path on the handshake path:
/// audit lines, principals, policy keys). These pin that the result is the
/// one the escaping rules give, for every ASCII byte in every position the
/// rules treat differently (alone, first, middle, last), in both quote styles.
@Suite("Escaping: plain-ASCII fast paths give the same text as the rules")
struct EscapeFastPathTests {
    /// Every one-byte ASCII text, and each byte at the start, in the middle
    /// and at the end of a plain value.
    static let samples: [String] = (0...0x7F).flatMap { (value: UInt32) -> [String] in
        guard let scalar = Unicode.Scalar(value) else { return [] }
        let c = String(Character(scalar))
        return [c, c + "ab", "a" + c + "b", "ab" + c, c + c]
    } + ["", "CN", "billing-worker-1", "#x", " x", "x ", " ", "#", "a b", "7F3A9C", "é", "a\u{202E}b"]

    /// The escapes `DisplayText.quoted` gives by name.
    static let named: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"]

    /// The rules of `DisplayText.quoted`, scalar by scalar (for ASCII, where
    /// both styles agree, and for the two non-ASCII samples).
    static func quotedByRule(_ text: String, json: Bool) -> String {
        let body = text.unicodeScalars.map { scalar -> String in
            if let name = named[scalar] { return name }
            guard DisplayText.isUnsafe(scalar) else { return String(scalar) }
            guard json else { return DisplayText.escaped(String(scalar)) }
            return String(scalar).utf16.map { unit in
                let hex = String(unit, radix: 16)
                return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }.joined()
        }
        return "\"" + body.joined() + "\""
    }

    /// The rules of RFC 4514 §2.4 as `DistinguishedName.escape` applies them.
    static func escapedByRule(_ value: String) -> String {
        let scalars = Array(value.unicodeScalars)
        var out = ""
        for (i, scalar) in scalars.enumerated() {
            if "\"+,;<>\\".unicodeScalars.contains(scalar) {
                out += "\\" + String(scalar)
            } else if scalar == "#" && i == 0 {
                out += "\\#"
            } else if scalar == " " && (i == 0 || i == scalars.count - 1) {
                out += "\\ "
            } else if DisplayText.isUnsafe(scalar) {
                for byte in String(scalar).utf8 {
                    let hex = String(byte, radix: 16, uppercase: true)
                    out += "\\" + (hex.count == 1 ? "0" + hex : hex)
                }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    @Test("quoted: every ASCII byte in every position, JSON style")
    func quotedJSON() {
        for text in Self.samples {
            #expect(DisplayText.quoted(text, style: .json) == Self.quotedByRule(text, json: true), "\(Array(text.utf8))")
            #expect(JSONText.quoted(text) == Self.quotedByRule(text, json: true), "\(Array(text.utf8))")
        }
    }

    @Test("quoted: every ASCII byte in every position, Swift style")
    func quotedSwift() {
        for text in Self.samples {
            #expect(DisplayText.quoted(text) == Self.quotedByRule(text, json: false), "\(Array(text.utf8))")
        }
    }

    @Test("quoted never leaves a raw quote, backslash or control byte inside the quotes")
    func quotedIsClosed() {
        for text in Self.samples {
            let inner = Array(DisplayText.quoted(text, style: .json).utf8.dropFirst().dropLast())
            var index = 0
            while index < inner.count {
                let byte = inner[index]
                #expect(byte >= 0x20 && byte != 0x7F, "raw control byte \(byte) in the quoting of \(Array(text.utf8))")
                #expect(byte != UInt8(ascii: "\""), "raw quote in the quoting of \(Array(text.utf8))")
                // A backslash always starts an escape: skip the escaped byte.
                index += byte == UInt8(ascii: "\\") ? 2 : 1
            }
        }
    }

    @Test("RFC 4514 escape: every ASCII byte in every position")
    func distinguishedNameEscape() {
        for value in Self.samples {
            #expect(DistinguishedName.escape(value) == Self.escapedByRule(value), "\(Array(value.utf8))")
        }
        #expect(DistinguishedName.escape("#x") == "\\#x")
        #expect(DistinguishedName.escape(" x ") == "\\ x\\ ")
        #expect(DistinguishedName.escape("a+b") == "a\\+b")
        #expect(DistinguishedName.escape("a\u{7F}b") == "a\\7Fb")
    }
}
