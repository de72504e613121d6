import NIOCore
import Testing
import RelayCLISupport
import RelayCore
import RelayWire
@testable import RelayClient

/// relay-sub's output of a message whose stamped publisher, headers or text
/// payload hold bidi or C1 characters: escaped, never raw to the terminal.
@Suite("relay-sub output escapes untrusted text")
struct CLIEscapingTests {
    static func message(principal: String, payload: String, header: String = "v") throws -> ReceivedMessage {
        ReceivedMessage(Message(subscriptionID: 1, sequence: 7, timestamp: 0, topic: "t.x", publisherPrincipal: principal,
                                publisherFingerprint: .zero, headers: try Headers([HeaderField(key: "k", value: header)]),
                                payload: ByteBuffer(string: payload)))
    }

    @Test("pretty: the stamped publisher, headers and text payload are shown with \\u{X} escapes")
    func pretty() throws {
        let line = MessageFormat.pretty(try Self.message(principal: "CN=eve\u{202E}gpj", payload: "hi\u{9B}2J\nnext",
                                                     header: "a\u{2066}b"))
        #expect(line.contains(#"from CN=eve\u{202E}gpj"#), "\(line)")
        #expect(line.contains(#"[k=a\u{2066}b]"#), "\(line)")
        #expect(line.contains(#"hi\u{9B}2J\nnext"#), "\(line)")
        #expect(!DisplayText.containsUnsafe(line))
    }

    /// Wave-14 attack run: a certificate with `CN=аlice` (Cyrillic а) was
    /// shown as `from аlice`, identical to `alice` on a terminal.
    @Test("pretty: a publisher name with non-ASCII letters is followed by its certificate's fingerprint; an ASCII one is not")
    func lookAlikeNames() throws {
        let lookAlike = MessageFormat.pretty(try Self.message(principal: "\u{430}lice", payload: "p"))
        #expect(lookAlike.contains("from \u{430}lice (non-ASCII name; certificate sha256:\(String(repeating: "0", count: 16))…)"),
                "\(lookAlike)")
        let plain = MessageFormat.pretty(try Self.message(principal: "alice", payload: "p"))
        #expect(plain.contains("from alice  ") && !plain.contains("sha256"), "\(plain)")
    }

    @Test("json: unsafe scalars become JSON \\u escapes (exact on decoding)")
    func json() throws {
        let line = MessageFormat.json(try Self.message(principal: "eve\u{202E}", payload: "p"))
        #expect(line.contains(#""principal":"eve\u202e""#), "\(line)")
        #expect(!DisplayText.containsUnsafe(line))
    }
}
