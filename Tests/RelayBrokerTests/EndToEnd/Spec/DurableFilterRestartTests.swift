import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.6 across a restart (issue #18 item 8): the filter
/// a durable was attached with is stored with its cursor, so after relayd
/// stops and starts again on the same data directory, reusing the name with
/// another filter is still refused with `durable_filter_mismatch` and the
/// cursor does not move.
@Suite("spec §4.6: a durable's filter survives a relayd restart", .serialized)
struct DurableFilterRestartTests {
    @Test("after a restart, another filter under the durable's name is refused and the same filter resumes after the cursor")
    func filterSurvivesRestart() async throws {
        try await withRelayd { relayd in
            let seqs = try await relayd.acknowledgedDurable("d", filter: "dr.a.>", topic: "dr.a.x", count: 4, through: 1)
            // A clean stop (SIGTERM), then a start on the same data directory.
            #expect(await relayd.terminate() == 0)
            try await relayd.start()

            let after = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await after.hello()
            let other = try await after.subscribeDurable(1, "dr.b.>", credit: 4, durable: "d", ackMode: .cumulative)
            #expect(other.errorCode == .durableFilterMismatch, "SUBACK \(other.code): \(other.message)")
            #expect(other.message.contains("\"d\"") && other.message.contains("dr.a.>"), "\(other.message)")
            // Refused means untouched: the stored filter resumes right after the acknowledged sequence.
            let same = try await after.subscribeDurable(2, "dr.a.>", credit: 4, durable: "d", ackMode: .cumulative)
            #expect(same.isAccepted && same.firstSequence == seqs[1] + 1, "resume at \(same.firstSequence): \(same.message)")
            #expect(try await after.messages(2).map(\.sequence) == Array(seqs[2...]))
            await after.close()
        }
    }
}

extension RelaydFixture {
    /// Publishes `count` messages on `topic`; a durable `name` on `filter`
    /// (`ack_mode` cumulative) receives them and acknowledges the one at
    /// index `through`, durably. Returns the sequences.
    func acknowledgedDurable(_ name: String, filter: String, topic: String, count: Int, through: Int) async throws -> [UInt64] {
        let publisher = try await FrameClient.connect(port: port, pki: pki)
        try await publisher.hello()
        let seqs = try await publisher.publish(topic, count: count).map(\.sequence)
        await publisher.close()
        let consumer = try await FrameClient.connect(port: port, pki: pki)
        try await consumer.hello()
        #expect(try await consumer.subscribeDurable(1, filter, credit: UInt32(count), durable: name, ackMode: .cumulative).isAccepted)
        #expect(try await consumer.messages(count).map(\.sequence) == seqs)
        // The PUBACK of the PUB written after the ACK says the cursor is on disk.
        try await consumer.acknowledgeDurably(subscriptionID: 1, sequence: seqs[through])
        await consumer.close()
        return seqs
    }
}
