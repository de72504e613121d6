import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Requests that name what an earlier request of the same connection left
/// waiting for the store's writer (held with ``StoreWriteLock``, so the
/// ordering is certain, not a race): a durable re-attached right after its
/// UNSUB, and one publish id sent twice with different payloads.
@Suite("spec §4.3, §4.6, §4.8: requests behind a commit still on the writer", .serialized)
struct PendingCommitSequencingTests {
    @Test("UNSUB then SUB of the same durable in one write, its last ACK not yet committed: the SUB resumes after that ACK (not durable_in_use); another filter is durable_filter_mismatch")
    func durableReattachedBehindItsDetach() async throws {
        try await withRelayd { relayd in
            let consumer = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await consumer.hello()
            let seqs = try await consumer.publish("re.x", count: 3).map(\.sequence)
            #expect(try await consumer.subscribe(1, "re.x", from: .earliest, credit: 10, durable: "keep", ackMode: .cumulative).isAccepted)
            #expect(try await consumer.messages(3).map(\.sequence) == seqs)
            try await consumer.send(.ack(Ack(subscriptionID: 1, sequence: seqs[1])))
            #expect(try await consumer.publish("re.barrier", count: 1, firstID: 10).count == 1)  // the ACK is on disk

            let lock = try await StoreWriteLock.acquire(dataDirectory: relayd.dataDirectory)
            defer { lock.release() }
            // The detach of subscription 1 commits its cursor (seqs[1]) on the
            // writer, which waits for the lock; the SUB behind it in the same write:
            try await consumer.send(.unsubscribe(subscriptionID: 1),
                                    .subscribe(Subscribe(subscriptionID: 2, filter: "re.x", start: .earliest, durableName: "keep",
                                                         initialCredit: 10, ackMode: .cumulative)))
            guard case .subscribeAck(let again) = try await consumer.nextNonMessage() else { throw BrokerTestError.refused("no SUBACK") }
            #expect(again.subscriptionID == 2 && again.isAccepted, "SUBACK \(again.errorCode?.name ?? "ok"): \(again.message)")
            #expect(again.firstSequence == seqs[1] + 1)
            // A second attachment of the name on this same connection is refused, and says where it is attached.
            let twice = try await consumer.subscribe(3, "re.x", from: .earliest, credit: 10, durable: "keep", ackMode: .cumulative)
            #expect(twice.errorCode == .durableInUse)
            #expect(twice.message.contains("subscription 2 on this connection"), "\(twice.message)")
            // Detached again, and re-attached under another filter: the cursor's
            // filter still applies, even though its commit is still pending.
            try await consumer.send(.unsubscribe(subscriptionID: 2),
                                    .subscribe(Subscribe(subscriptionID: 4, filter: "re.>", start: .earliest, durableName: "keep",
                                                         initialCredit: 10, ackMode: .cumulative)))
            guard case .subscribeAck(let other) = try await consumer.nextNonMessage() else { throw BrokerTestError.refused("no SUBACK") }
            #expect(other.subscriptionID == 4 && other.errorCode == .durableFilterMismatch, "SUBACK \(other.errorCode?.name ?? "ok"): \(other.message)")
            // Another connection cannot take the name while its commit is pending.
            let elsewhere = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await elsewhere.hello()
            #expect(try await elsewhere.subscribe(1, "re.x", from: .earliest, credit: 10, durable: "keep", ackMode: .cumulative).errorCode
                == .durableInUse)
            lock.release()
            // Once committed the name is free, and the cursor is the ACK's.
            let resumed = try await elsewhere.subscribeDurable(2, "re.x", credit: 10, durable: "keep", ackMode: .cumulative)
            #expect(resumed.isAccepted && resumed.firstSequence == seqs[1] + 1, "\(resumed)")
            #expect(try await elsewhere.messages(1).map(\.sequence) == [seqs[2]])
            await elsewhere.close()
            await consumer.close()
        }
    }

    @Test("one publish id twice in one read, different payloads, committed together: the second is the first's duplicate and its payload is never stored")
    func samePublishIDInOneCommit() async throws {
        try await withRelayd { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello(sessionID: ProducerSessionID(high: 0xD0D0, low: 7))
            // A first publish of the session, committed: the store knows the
            // publisher, and id 5 is above every key it holds.
            #expect(try await publisher.publish("dup.x", count: 1, firstID: 1).map(\.duplicate) == [false])
            let lock = try await StoreWriteLock.acquire(dataDirectory: relayd.dataDirectory)
            defer { lock.release() }
            try await publisher.send(.publish(Publish(publishID: 5, topic: "dup.x", payload: ByteBuffer(string: "first"))),
                                     .publish(Publish(publishID: 5, topic: "dup.x", payload: ByteBuffer(string: "second"))))
            #expect(try await publisher.pingBarrier().isEmpty)  // both read, neither committed
            lock.release()
            var acks: [PublishAck] = []
            for _ in 0..<2 {
                guard case .publishAck(let ack) = try await publisher.next() else { throw BrokerTestError.refused("no PUBACK") }
                acks.append(ack)
            }
            #expect(acks.map(\.publishID) == [5, 5])
            #expect(acks.map(\.duplicate) == [false, true])
            #expect(Set(acks.map(\.sequence)).count == 1 && acks[0].timestamp == acks[1].timestamp)
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            let stored = try await reader.storedMessages("dup.>", marker: "dup.end")
            #expect(stored.map(payloadString) == ["m0", "first"])
            await reader.close()
            await publisher.close()
        }
    }
}
