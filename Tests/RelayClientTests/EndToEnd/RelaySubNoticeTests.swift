import Foundation
import RelayCLISupport
import RelayClient
import RelayTestSupport
import Testing

/// Issue 18 item 8 with the real relay-sub against the real relayd: the
/// broker's notice that an existing durable ignored an explicit start reaches
/// the user (stderr), and stdout keeps only the messages.
@Suite("relay-sub durable notice end to end")
struct RelaySubNoticeTests {
    @Test("an existing durable given --from earliest: relay-sub prints the broker's notice on stderr, stdout has only messages")
    func ignoredStartIsPrinted() async throws {
        try await withBroker { broker in
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            for text in ["1", "2", "3"] { _ = try await publisher.publish(topic: "notice.d", text: text) }
            await publisher.close()
            let base = broker.cliArguments() + ["--topic", "notice.d", "--format", "raw", "--durable", "notice-worker", "--count", "1"]
            let first = try await runCLI("relay-sub", base + ["--from", "earliest"])
            #expect(first.status == 0 && first.stdout == ["1"], "\(first)")
            let firstNotice = first.stderr.contains { $0.contains("ignored") }
            #expect(!firstNotice, "a new durable got the notice: \(first.stderr)")

            let again = try await runCLI("relay-sub", base + ["--from", "earliest"])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout == ["2"], "the durable did not resume, or stdout carries more than the message: \(again.stdout)")
            let notice = again.stderr.first { $0.contains("durable \"notice-worker\" resumes after its cursor") }
            let line = try #require(notice, "no notice on stderr: \(again.stderr)")
            #expect(line.hasPrefix("relay-sub: ") && line.contains("requested start position was ignored")
                    && line.contains("relayctl durable delete notice-worker"), "\(line)")

            // No explicit start: nothing was ignored, so no notice.
            let plain = try await runCLI("relay-sub", base)
            #expect(plain.status == 0 && plain.stdout == ["3"], "\(plain)")
            let plainNotice = plain.stderr.contains { $0.contains("ignored") }
            #expect(!plainNotice, "\(plain.stderr)")
        }
    }
}
