import Foundation
import RelayClient
import RelayCore
import RelayTestSupport
import Testing

/// Issue 18 item 1: `relayctl status` reports message totals and rates and
/// `relayctl connections` the messages in per connection. The listings test
/// checks that these keys exist; this one checks their values against
/// traffic the test made itself, on a real relayd.
@Suite("relayctl status and connections count the traffic")
struct AdminRatesTests {
    @Test("status totals grow by exactly what was published and delivered, the rate is that count over the time between two calls, and a live publisher's row counts its messages")
    func totalsAndRates() async throws {
        let ids = try AdminTestIdentities()
        try await withRelayd(try ids.fixture()) { relayd in
            let ops = relayd.cliArguments(ids.ops)
            let beforeFirst = Date()
            let first = try await adminJSON(["status"] + ops)
            let afterFirst = Date()
            let in1 = try #require(first["messages_in_total"] as? Int, "\(first)")
            let out1 = try #require(first["messages_out_total"] as? Int, "\(first)")

            // 40 messages in through relay-pub, then 40 out through relay-sub: both sessions have closed
            // by the next status, so the totals come from the broker's closed-session sums.
            try await publish(relayd, ids, topic: "rate.a", payloads: (1...40).map { "m\($0)" })
            let sub = try await runCLI("relay-sub", ["--topic", "rate.>", "--from", "earliest", "--count", "40",
                                                     "--format", "raw"] + relayd.cliArguments(ids.app))
            #expect(sub.status == 0 && sub.stdout.count == 40, "\(sub.stdout.count) lines: \(sub.stderr)")
            // And 7 on a connection that stays open: its own row must say 7.
            let publisher = try await Publisher.connect(relayd.clientConfiguration(ids.app))
            for index in 1...7 { _ = try await publisher.publish(topic: "rate.live", text: "l\(index)") }

            let beforeSecond = Date()
            let second = try await adminJSON(["status"] + ops)
            let afterSecond = Date()
            let in2 = try #require(second["messages_in_total"] as? Int, "\(second)")
            let out2 = try #require(second["messages_out_total"] as? Int, "\(second)")
            #expect(in2 - in1 == 47, "messages in: \(in1) then \(in2)")
            #expect(out2 - out1 == 40, "messages out: \(out1) then \(out2)")

            // The broker's window lies between the end of the first call and the start of the
            // second (shortest) and between the start of the first and the end of the second (longest).
            let longest = afterSecond.timeIntervalSince(beforeFirst)
            let shortest = beforeSecond.timeIntervalSince(afterFirst)
            let inRate = try #require(second["messages_in_per_second"] as? Double, "\(second)")
            let outRate = try #require(second["messages_out_per_second"] as? Double, "\(second)")
            #expect(inRate >= 47 / longest && inRate <= 47 / shortest,
                    "in rate \(inRate)/s outside [\(47 / longest), \(47 / shortest)]")
            #expect(outRate >= 40 / longest && outRate <= 40 / shortest,
                    "out rate \(outRate)/s outside [\(40 / longest), \(40 / shortest)]")

            let connections = try #require(try await adminJSON(["connections"] + ops)["items"] as? [[String: Any]])
            let live = try #require(row(connections, "principal", "app"), "\(connections)")
            #expect(live["messages_in"] as? Int == 7, "\(live)")
            await publisher.close()
        }
    }
}
