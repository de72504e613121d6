import Foundation
import Testing
@testable import RelayBroker
import RelayCore

/// Replays the kept fuzz corpus of relay-fuzz-config-parser through the same
/// entry point and checks as the fuzz target (ConfigCorpus/ links to
/// Fuzz/ConfigParser/ConfigParserInvariants.swift).
@Suite("Config parser fuzz corpus")
struct ConfigCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/config-parser")

    @Test("every kept corpus input parses or fails with a config error, and accepted configs are in range")
    func corpusReplays() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path)
        #expect(files.count >= 20, "the kept corpus at \(Self.corpus.path) is missing or was emptied")
        for file in files {
            let data = try Data(contentsOf: Self.corpus.appendingPathComponent(file))
            let violations = data.withUnsafeBytes { ConfigParserInvariants.violations($0) }
            #expect(violations.isEmpty, "\(file): \(violations)")
        }
    }

    @Test("the shipped config/relay.toml satisfies the same invariants")
    func shippedConfig() throws {
        let url = Self.corpus.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/relay.toml")
        let data = try Data(contentsOf: url)
        let config = try BrokerConfiguration.parse(String(decoding: data, as: UTF8.self), file: ConfigParserInvariants.file,
                                                   baseDirectory: "/fuzz", checkFiles: false)
        #expect(ConfigParserInvariants.violations(accepted: config).isEmpty)
    }

    // Regressions for what fuzzing found; each used to abort or trap the process.

    @Test("a table header starting with a character toml++ cannot parse is a config error, not an abort",
          arguments: ["[!]", "[é]", "[[ #]]", "[\u{1}]", "[tls]\ncertificate = \"c\"\n[=]"])
    func unparsableHeader(_ text: String) {
        do {
            _ = try BrokerConfiguration.parse(text, file: "f.toml", baseDirectory: "/", checkFiles: false)
            Issue.record("\(text.debugDescription) was accepted")
        } catch {
            #expect(error.message.contains("table header must start with"), "\(error)")
            #expect(error.message.contains("line \(text.split(separator: "\n").count)"), "\(error)")
        }
    }

    @Test("'}' where an array expects a value is a config error, not an abort",
          arguments: ["x = [}", "x = [1, }", "x = [\n  \"a\",\n}", "x = {a = [}]}"])
    func braceInArray(_ text: String) {
        do {
            _ = try BrokerConfiguration.parse(text, file: "f.toml", baseDirectory: "/", checkFiles: false)
            Issue.record("\(text.debugDescription) was accepted")
        } catch {
            #expect(error.message.contains("'}' inside an array"), "\(error)")
            #expect(error.message.contains("line \(text.split(separator: "\n").count)"), "\(error)")
        }
    }

    @Test("an unquoted float, date or time is a config error, not an abort",
          arguments: ["[server]\nlisten = 1979-05-27TM-707:32:00Z", "x = 1979-05-27", "x = 07:32:00", "x = 1.5",
                      "x = inf", "x = [1, 2.0]", "x = { a = 1e3 }", "x = 0x10", "x = 01"])
    func unquotedNonInteger(_ text: String) {
        do {
            _ = try BrokerConfiguration.parse(text, file: "f.toml", baseDirectory: "/", checkFiles: false)
            Issue.record("\(text.debugDescription) was accepted")
        } catch {
            #expect(error.message.contains("is not true, false or a decimal integer"), "\(error)")
            #expect(error.message.contains("line \(text.split(separator: "\n").count)"), "\(error)")
        }
    }

    @Test("look-alikes inside strings, comments and multi-line arrays, and the value kinds relayd uses, are left to the TOML parser")
    func headerLookalikes() {
        let text = #"""
        x = """
        [!]
        """
        y = '''
        [é]'''
        z = [
          [1], [ "a" ],
          ["[!"],
        ]
        w = { a = "[!" } # [!]
        v = "\"[!"
        [ "quoted" ]
        [ 'literal' ]
        [-a.b]
        t = [ { a = "}" }, {b = [1, 2]} ]
        u = [
          # }
          "x", # [!]
        ]
        n = -1_000
        b = [true, false, 0, +7]
        i = { a = 1, b = "x", c = [2] }
        a.b-c = 3
        """#
        #expect(TOMLPreflight.problem(in: text) == nil)
    }

    @Test("an integer duration too large for nanoseconds is a config error, not an overflow trap")
    func durationOverflow() {
        let text = "[tls]\ncertificate = \"c\"\nprivate_key = \"k\"\nclient_ca = \"ca\"\n[server]\nhello_timeout = 99999999999\n"
        do {
            _ = try BrokerConfiguration.parse(text, file: "f.toml", baseDirectory: "/", checkFiles: false)
            Issue.record("an overflowing hello_timeout was accepted")
        } catch {
            #expect(error.key == "server.hello_timeout", "\(error)")
        }
    }
}
