import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// `relayctl durables` shows, for a durable that is not attached, the
/// principal and filter it was last attached with: relayd remembers them
/// when a session closes. A durable that never stored a cursor (no ACK, no
/// MSG sent) is in no listing, yet it was remembered too, for ever: a
/// client that opens its `max_subscriptions` durables under fresh names and
/// disconnects, again and again, grew relayd by the names and filters.
@Suite("relayd end to end: durables without a cursor leave nothing behind", .serialized)
struct DurableActivityBoundTests {
    static let cycles = 60
    static let perConnection = 1_000

    @Test("60 connections × 1,000 durables never acknowledged (255-byte names, 249-byte filters), each closed: relayd grows < 12 MiB")
    func unacknowledgedDurablesAreForgotten() async throws {
        try await withRelayd { relayd in
            let pid = try #require(relayd.process?.pid)
            // The largest durable name (255 bytes) and a 249-byte filter of 32 tokens.
            let filter = String(repeating: "abcdefg.", count: 31) + ">"
            #expect(filter.utf8.count == 249)
            func churn(_ cycle: Int) async throws {
                let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
                try await client.hello()
                var buffer = client.channel.allocator.buffer(capacity: Self.perConnection * 560)
                for id in 1...Self.perConnection {
                    let prefix = "c\(cycle)-\(id)-"
                    let name = prefix + String(repeating: "n", count: 255 - prefix.utf8.count)
                    try buffer.writeFrame(.subscribe(Subscribe(subscriptionID: UInt32(id), filter: filter, durableName: name,
                                                               initialCredit: 0, ackMode: .cumulative)))
                }
                try await client.channel.writeAndFlush(buffer)
                for id in 1...Self.perConnection {
                    guard case .subscribeAck(let ack) = try await client.next() else { throw BrokerTestError.refused("no SUBACK \(id)") }
                    #expect(ack.isAccepted, "SUB \(id): \(ack.message)")
                }
                await client.close()
            }
            for cycle in 0..<5 { try await churn(cycle) }  // warm-up: allocator, TLS, buffers
            let baseline = try #require(ProcessMemory.residentBytes(pid: pid))
            for cycle in 5..<(5 + Self.cycles) { try await churn(cycle) }
            // (The last close may still be under way: one cycle of 60 does not change the verdict.)
            let grown = try #require(ProcessMemory.residentBytes(pid: pid)) - baseline
            print("durables without cursors: RSS baseline \(baseline >> 20) MiB, +\(grown >> 20) MiB after "
                + "\(Self.cycles * Self.perConnection) durables on \(Self.cycles) connections")
            #expect(grown < 12 << 20, "relayd's RSS grew by \(grown >> 20) MiB")
        }
    }
}
