import Foundation
import RelayCLISupport
import RelayClient
import RelayTestSupport
import Testing

/// Issue 18 item 8 with the real relay-sub against the real relayd: relative
/// start times (`--since D`, `--from time:-D`) start where the clock says.
/// RelativeStartTests checks the parsing; this checks the broker's answer.
@Suite("relay-sub relative start end to end")
struct RelativeStartEndToEndTests {
    @Test("--since 10s and --from time:-10s receive the batch published after a 12 s gap, not the one before")
    func relativeStartTimes() async throws {
        try await withBroker { broker in
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            var batchA: [PublishReceipt] = []
            for text in ["a1", "a2"] { batchA.append(try await publisher.publish(topic: "since.t", text: text)) }
            let lastA = try #require(batchA.last).timestamp
            // The gap is on the broker's commit clock (this machine's): wait
            // until the clock is 12 s past A's last commit stamp. Polled: the
            // passing of time has no event to await.
            let gap: UInt64 = 12_000_000_000
            let moved = await eventually(timeout: 30, every: 0.05) { currentTimeNanoseconds() >= lastA + gap }
            #expect(moved, "the clock did not pass \(lastA + gap)")
            var batchB: [PublishReceipt] = []
            for text in ["b1", "b2"] { batchB.append(try await publisher.publish(topic: "since.t", text: text)) }
            await publisher.close()
            let firstB = try #require(batchB.first).timestamp
            try #require(firstB >= lastA + gap, "B's first commit \(firstB) is not 12 s after A's last \(lastA)")

            // Each relay-sub starts 10 s back from its own clock. That clock is
            // past B's first commit, so the start is at least 2 s after A's
            // last; it is at or before B's first while relay-sub reads its
            // clock within 10 s of that commit (the only load-dependent
            // margin: with 4 s of a 5 s gap, two relay-subs started at once
            // under the full suite's load read their clocks too late and got
            // only b2 once in CI).
            // --timeout ends a run that misses B instead of waiting for --count.
            let base = broker.cliArguments() + ["--topic", "since.t", "--format", "raw", "--count", "2", "--timeout", "30"]
            async let since = runCLI("relay-sub", base + ["--since", "10s"])
            async let fromTime = runCLI("relay-sub", base + ["--from", "time:-10s"])
            let runs = try await [("--since 10s", since), ("--from time:-10s", fromTime)]
            let finished = currentTimeNanoseconds()
            for (name, run) in runs {
                #expect(run.status == 0, "\(name): \(run.stderr)")
                let clocks = "A's last commit \(lastA), B's first \(firstB), relay-sub done by \(finished)"
                #expect(run.stdout == ["b1", "b2"], "\(name) got \(run.stdout) (\(clocks)): \(run.stderr)")
            }
        }
    }
}
