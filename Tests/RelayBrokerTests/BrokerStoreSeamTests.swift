import Foundation
import Testing

/// Issue 17 item 3: the broker reaches storage only through `any MessageLog`.
/// Its sources never name the LMDB implementation, so a second backend (the
/// in-memory log, a replicated one) plugs in at relayd's composition root
/// without touching the broker. This reads the source tree, so it fails the
/// moment a broker file names the concrete store again, even in a comment
/// (a comment that says "LMDB" in the broker is a claim about a backend the
/// broker must not know).
@Suite("Broker–store seam")
struct BrokerStoreSeamTests {
    static let brokerSources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/RelayBroker")

    /// Names that belong to the LMDB backend only.
    static let forbidden = ["MessageStore", "LMDB", "CLMDB", "mdb_"]

    /// Every `name:line: text` in `text` that names a forbidden word.
    static func violations(in text: String, file: String) -> [String] {
        var found: [String] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            for word in forbidden where line.contains(word) {
                found.append("\(file):\(number + 1): names \(word): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        return found
    }

    static func swiftFiles() throws -> [URL] {
        let enumerator = try #require(FileManager.default.enumerator(at: brokerSources, includingPropertiesForKeys: nil))
        return enumerator.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
    }

    @Test("no file under Sources/RelayBroker names MessageStore, LMDB, CLMDB or mdb_")
    func brokerNamesNoLMDB() throws {
        let files = try Self.swiftFiles()
        // The walk really read the broker (a wrong path would pass vacuously).
        #expect(files.count >= 30, "found only \(files.count) Swift files under \(Self.brokerSources.path)")
        #expect(files.contains { $0.lastPathComponent == "BrokerContext.swift" })
        var violations: [String] = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let relative = file.path.replacingOccurrences(of: Self.brokerSources.path + "/", with: "")
            violations += Self.violations(in: text, file: relative)
        }
        #expect(violations.isEmpty, "the broker must use `any MessageLog`:\n\(violations.joined(separator: "\n"))")
    }

    @Test("the scanner flags each forbidden name (so the check above can fail)")
    func scannerFlagsEachName() {
        for word in Self.forbidden {
            #expect(Self.violations(in: "let a = 1\n// uses \(word) here\n", file: "X.swift").count >= 1, "\(word)")
        }
        #expect(Self.violations(in: "let log: any MessageLog\nInMemoryMessageLog()\n", file: "X.swift").isEmpty)
    }
}
