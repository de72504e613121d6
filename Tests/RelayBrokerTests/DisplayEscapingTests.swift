import Foundation
import Testing
import RelayCore
import RelayPolicy
import RelayTestSupport
@testable import RelayBroker

/// The log and audit serializers never write a bidi, C1 or other format
/// character raw, and `multi_value` parses as documented.
@Suite("Log and audit escaping; multi_value config")
struct DisplayEscapingTests {
    @Test("JSON text escapes C1, bidi and format characters, and decodes back to the exact value")
    func jsonText() throws {
        let value = "eve\u{202E}gpj\u{9B}31m\u{2066}\u{E0001}"
        let quoted = JSONText.quoted(value)
        #expect(quoted == #""eve\u202egpj\u009b31m\u2066\udb40\udc01""#)
        #expect(!DisplayText.containsUnsafe(quoted))
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as? [String]
        #expect(decoded == [value])
    }

    @Test("a logfmt value holding a bidi or C1 character is quoted and escaped")
    func logfmt() {
        #expect(StructuredLogHandler.logfmtValue("CN=eve\u{202E}") == #""CN=eve\u202e""#)
        #expect(StructuredLogHandler.logfmtValue("x\u{9B}") == #""x\u009b""#)
        #expect(StructuredLogHandler.logfmtValue("plain") == "plain")
    }

    @Test("[[acl.rule]] multi_value: \"refuse\" by default, \"all\" opts in, anything else is a config error")
    func multiValueKey() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        try dir.createPlaceholders(["server.crt", "server.key", "ca.crt"])
        func parse(_ rule: String) throws -> BrokerConfiguration {
            try BrokerConfiguration.parse("""
            [tls]
            certificate = "server.crt"
            private_key = "server.key"
            client_ca = "ca.crt"

            [[acl.rule]]
            name = "r"
            publish = ["t.{san.dns}"]
            \(rule)
            """, file: dir.file("relay.toml"), baseDirectory: dir.path)
        }
        #expect(try parse("").acl.rules.first?.multiValue == .refuse)
        #expect(try parse(#"multi_value = "refuse""#).acl.rules.first?.multiValue == .refuse)
        #expect(try parse(#"multi_value = "all""#).acl.rules.first?.multiValue == .all)
        do {
            _ = try parse(#"multi_value = "first""#)
            Issue.record("multi_value = \"first\" must be refused")
        } catch let error as ConfigError {
            #expect(error.key.hasSuffix("multi_value"), "\(error)")
            #expect(error.description.contains("\"refuse\"") && error.description.contains("\"all\""), "\(error)")
        }
    }
}
