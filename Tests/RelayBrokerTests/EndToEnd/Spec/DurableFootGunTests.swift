import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Protocol/relay-v1.md §4.6-4.7 (issue #18 item 8): an existing durable is
/// never moved silently. Another filter under the same name is refused with
/// `durable_filter_mismatch`; an explicit start position on a durable that
/// resumes at its cursor is ignored and the SUBACK's message says so.
@Suite("spec §4.6: durable foot-guns", .serialized)
struct DurableFootGunTests {
    @Test("a durable name reused with another filter is refused, naming the durable and its filter")
    func otherFilterRefused() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let seqs = try await publisher.publish("fg.a", count: 3).map(\.sequence)
            let consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            #expect(try await consumer.subscribeDurable(1, "fg.a", credit: 3, durable: "keep", ackMode: .none).isAccepted)
            #expect(try await consumer.messages(3).map(\.sequence) == seqs)
            try await consumer.send(.unsubscribe(subscriptionID: 1))
            let other = try await consumer.subscribeDurable(2, "fg.>", credit: 3, durable: "keep", ackMode: .none)
            #expect(other.errorCode == .durableFilterMismatch, "SUBACK \(other.code): \(other.message)")
            #expect(other.message.contains("\"keep\"") && other.message.contains("fg.a"), "\(other.message)")
            // Refused means untouched: the same filter still resumes after the cursor.
            let same = try await consumer.subscribeDurable(3, "fg.a", credit: 3, durable: "keep", ackMode: .none)
            #expect(same.firstSequence == seqs[2] + 1, "resume at \(same.firstSequence)")
            await consumer.close()
            await publisher.close()
        }
    }

    @Test("an explicit start position on an existing durable resumes at the cursor and the SUBACK says so")
    func explicitStartIgnoredWithNotice() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let seqs = try await publisher.publish("fg.b", count: 2).map(\.sequence)
            let consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            let first = try await consumer.subscribeDurable(1, "fg.b", credit: 1, durable: "pos", ackMode: .none)
            #expect(first.isAccepted && first.message.isEmpty, "new durable: \(first.message)")
            #expect(try await consumer.messages(1).map(\.sequence) == [seqs[0]])
            try await consumer.send(.unsubscribe(subscriptionID: 1))
            let resumed = try await consumer.subscribeDurable(2, "fg.b", from: .earliest, credit: 0, durable: "pos", ackMode: .none)
            #expect(resumed.isAccepted && resumed.firstSequence == seqs[0] + 1, "resume at \(resumed.firstSequence)")
            #expect(resumed.message.contains("\"pos\"") && resumed.message.contains("\(seqs[0])"), "notice: \(resumed.message)")
            try await consumer.send(.unsubscribe(subscriptionID: 2))
            // `latest` is the default start, not an explicit one: no notice.
            let plain = try await consumer.subscribeDurable(3, "fg.b", from: .latest, credit: 0, durable: "pos", ackMode: .none)
            #expect(plain.isAccepted && plain.message.isEmpty, "latest: \(plain.message)")
            await consumer.close()
            await publisher.close()
        }
    }
}
