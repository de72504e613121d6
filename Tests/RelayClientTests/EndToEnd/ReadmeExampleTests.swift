import Foundation
import NIOCore
import RelayTestSupport
import RelayWire
import Testing

/// The README's Swift example is Sources/Examples/main.swift (built as the
/// `Examples` executable with the tests). These tests check that the
/// README shows exactly that file, and run it against a real relayd.
@Suite("README Swift example", .serialized)
struct ReadmeExampleTests {
    static let examplePath = QuickstartTests.repository.appendingPathComponent("Sources/Examples/main.swift")

    /// The ```swift block of the README's "Swift client library" section.
    static func readmeBlock() throws -> String {
        let readme = try String(contentsOf: QuickstartTests.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(QuickstartTests.section("## Swift client library", of: readme), "README.md lost its Swift section")
        let blocks = section.components(separatedBy: "```swift\n").dropFirst()
        #expect(blocks.count == 1, "the Swift section has \(blocks.count) swift blocks")
        let block = try #require(blocks.first)
        return String(try #require(block.range(of: "```").map { block[..<$0.lowerBound] }, "the swift block is not closed"))
    }

    /// main.swift without its leading comment (which says where it is shown).
    static func exampleSource() throws -> String {
        let source = try String(contentsOf: examplePath, encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.drop { $0.hasPrefix("//") }.joined(separator: "\n")
    }

    @Test("the README's Swift block is Sources/Examples/main.swift, line for line")
    func readmeShowsTheFile() throws {
        let block = try Self.readmeBlock()
        let source = try Self.exampleSource()
        #expect(block.contains("Publisher.connect") && block.contains("subscriber.subscribe"), "the README block lost its example:\n\(block)")
        #expect(block == source, """
        README.md's Swift example and Sources/Examples/main.swift differ; copy one into the other.
        README:
        \(block)
        main.swift:
        \(source)
        """)
    }

    @Test("the example runs against relayd: it prints the receipt, then the message it published with the broker-stamped principal, and exits 0")
    func exampleRuns() async throws {
        try await withRelayd { relayd in
            // The principal relayd stamps for alice, as its WELCOME says.
            let probe = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let principal = try await probe.hello().principal
            await probe.close()

            // A home without a client profile: the settings come from the environment only.
            let home = try TemporaryDirectory(prefix: "example-home")
            defer { home.remove() }
            let example = try await ChildProcess(try ProductLocator.executable("Examples"), [], environment: [
                "HOME": home.path,
                "RELAY_SERVER": "127.0.0.1:\(relayd.port)",
                "RELAY_CERT": relayd.pki.alice.certificate,
                "RELAY_KEY": relayd.pki.alice.key,
                "RELAY_CA": relayd.pki.ca.certificate,
            ])
            example.closeStdin()
            let status = await example.waitForExit(timeout: 60)
            #expect(status == 0, "the example failed:\n\(example.transcript)")

            let output = example.stdoutLines
            let receipt = output.first { $0.hasPrefix("stored as sequence ") }
            let receiptLine = try #require(receipt, "\(example.transcript)")
            let sequence = try #require(UInt64(receiptLine.dropFirst("stored as sequence ".count)), "\(receiptLine)")
            #expect(output == [
                "stored as sequence \(sequence)",
                "#\(sequence) orders.eu.created from \(principal): {\"id\": 42}",
            ], "\(example.transcript)")

            // The message is in the store, with the header the example set.
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            try await reader.send(.subscribe(Subscribe(subscriptionID: 1, filter: "orders.>", start: .earliest, initialCredit: 10)))
            let stored = try await reader.nextReply { if case .message = $0 { return true }; return false }
            guard case .message(let message) = stored else {
                Issue.record("nothing stored on orders.>")
                return
            }
            #expect(message.sequence == sequence && message.topic == "orders.eu.created")
            #expect(Array(message.headers) == [HeaderField(key: "content-type", value: "application/json")])
            #expect(String(buffer: message.payload) == #"{"id": 42}"#)
            await reader.close()
        }
    }
}
