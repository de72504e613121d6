import RelayCore
import RelayPolicy
import RelayStore
import RelayWire
import Testing
@testable import RelayBroker

/// PUB, its window and its answers (Protocol/relay-v1.md §4.3-4.5).
@Suite("Session state machine: publishing")
struct SessionStateMachinePublishingTests {
    typealias F = SessionFixture

    @Test("PUBs of one read batch go to the log as one append; each is answered by its PUBACK")
    func oneAppendPerBatch() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(1, F.publish(1), env)
        machine.publish(2, F.publish(2), env)
        #expect(env.log.isEmpty)  // nothing before the batch ends
        machine.readBatchEnded(env)
        #expect(env.log == ["append 1,2"])
        #expect(machine.session?.window.inFlight == 2)
        machine.commitCompleted(ids: [1, 2], results: [F.receipt(10), F.receipt(4, duplicate: true)], env)
        #expect(env.log == ["append 1,2", "puback 1 seq 10", "puback 2 seq 4 duplicate"])
        #expect(machine.session?.window.inFlight == 0)
    }

    @Test("the appended message carries the session's publisher stamp and a dedup key of certificate, session and publish id")
    func stampAndProducerKey() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(42, F.publish(42, payload: "hello"), env)
        machine.readBatchEnded(env)
        let message = try #require(env.appended.first?.first)
        #expect(message.publisher == PublisherStamp(principal: "CN=svc", fingerprint: CertificateFingerprint(w0: 0xAAAA_AAAA_AAAA_AAAA, w1: 0xAAAA_AAAA_AAAA_AAAA, w2: 0xAAAA_AAAA_AAAA_AAAA, w3: 0xAAAA_AAAA_AAAA_AAAA)))
        #expect(message.producerKey?.publishID == 42)
        #expect(message.producerKey?.sessionHigh == 1 && message.producerKey?.sessionLow == 2)
        #expect(message.payload == .init(string: "hello"))
    }

    @Test("without a producer session a publish has no dedup key")
    func noProducerSession() throws {
        let env = try F.environment()
        var opening = F.opening
        opening.producerSession = .none
        var machine = F.active(opening: opening, env)
        machine.publish(1, F.publish(1), env)
        machine.readBatchEnded(env)
        let message = try #require(env.appended.first?.first)
        #expect(message.producerKey == nil)
    }

    @Test("a PUB the wire layer refused is answered with its code and stores nothing")
    func wireRefusal() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(3, .failure(OperationError(.payloadTooLarge, "too big")), env)
        machine.publish(4, .failure(OperationError(.reservedTopic, "reserved")), env)
        machine.readBatchEnded(env)
        #expect(env.log == ["puberr 3 payload_too_large", "puberr 4 reserved_topic"])
        #expect(machine.session?.window.inFlight == 0)
    }

    @Test("a PUB the policy does not allow is not_authorized and audited as publish_denied")
    func notAuthorized() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(1, F.publish(1, topic: "u.a"), env)
        #expect(env.log == ["puberr 1 not_authorized"])
        #expect(env.audits == ["publish_denied"])
    }

    @Test("above max_in_flight the excess is too_many_in_flight; reading pauses at the limit and resumes at half")
    func window() throws {
        let env = try F.environment()
        var machine = F.active(env)  // max_in_flight 4
        for id in UInt64(1)...4 { machine.publish(id, F.publish(id), env) }
        #expect(env.log == ["pause"])
        #expect(machine.readsPaused)
        machine.publish(5, F.publish(5), env)
        #expect(env.log == ["pause", "puberr 5 too_many_in_flight"])
        machine.readBatchEnded(env)
        env.clear()
        machine.commitCompleted(ids: [1], results: [F.receipt(1)], env)
        #expect(env.log == ["puback 1 seq 1"])  // 3 in flight: still paused
        machine.commitCompleted(ids: [2], results: [F.receipt(2)], env)
        #expect(env.log == ["puback 1 seq 1", "puback 2 seq 2", "resume"])
        #expect(!machine.readsPaused)
    }

    @Test("a read burst is handed to the log in slices")
    func appendSlices() throws {
        let env = try F.environment()
        var limits = F.limits
        limits.appendSliceSize = 2
        var machine = F.active(limits: limits, env)
        for id in UInt64(1)...3 { machine.publish(id, F.publish(id), env) }
        #expect(env.log == ["append 1,2"])
        machine.readBatchEnded(env)
        #expect(env.log == ["append 1,2", "append 3"])
    }

    @Test("a failed commit answers each publish with PUBERR and the store's code")
    func commitFailure() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(1, F.publish(1), env)
        machine.readBatchEnded(env)
        machine.commitCompleted(ids: [1], results: [.failure(.storageFull(maxMapSize: 1))], env)
        #expect(env.log == ["append 1", "puberr 1 storage_full"])
        #expect(machine.session?.window.inFlight == 0)
    }

    @Test("ACKs read before a PUB are committed before its append (the PUBACK confirms them)")
    func ackBeforePublishBarrier() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", ackMode: .cumulative), env)
        machine.deliverLive([F.live(1), F.live(2)], env)
        env.clear()
        machine.acknowledge(1, through: 2, env)
        machine.publish(9, F.publish(9), env)
        machine.readBatchEnded(env)
        #expect(env.log == ["commit d 2", "append 9"])
    }

    @Test("a commit completion after the session closed sends nothing")
    func completionAfterClose() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.publish(1, F.publish(1), env)
        machine.readBatchEnded(env)
        machine.terminate(.writeStalled, "stalled", env)
        env.clear()
        machine.commitCompleted(ids: [1], results: [F.receipt(1)], env)
        #expect(env.log.isEmpty)
    }
}
