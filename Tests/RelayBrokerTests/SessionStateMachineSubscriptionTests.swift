import RelayCore
import RelayPolicy
import RelayStore
import RelayWire
import Testing
@testable import RelayBroker

/// SUB, UNSUB, CREDIT and ACK (Protocol/relay-v1.md §4.6-4.10), every
/// refusal and error path.
@Suite("Session state machine: subscriptions")
struct SessionStateMachineSubscriptionTests {
    typealias F = SessionFixture

    @Test("SUB latest is routed and answered with the next sequence after the watermark")
    func subscribeLatest() throws {
        let env = try F.environment()
        env.watermark = 41
        var machine = F.active(env)
        machine.subscribe(7, F.subscribe(), env)
        #expect(env.log == ["route 7 t.>", "suback 7 first 42", "pump"])
        #expect(machine.session?.subscriptions[7]?.durableName == nil)
    }

    @Test("SUB with a stored start position starts where the log resolves it")
    func subscribeEarliest() throws {
        let env = try F.environment()
        env.resolvedStart = 5
        env.watermark = 9
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(start: .earliest), env)
        machine.subscribe(2, F.subscribe(start: .sequence(3)), env)
        #expect(env.log == ["route 1 t.>", "suback 1 first 5", "pump", "route 2 t.>", "suback 2 first 3", "pump"])
    }

    @Test("a subscription id already open is duplicate_subscription_id, checked before the request's own errors")
    func duplicateID() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(), env)
        env.clear()
        machine.subscribe(1, .failure(OperationError(.invalidFilter, "bad")), env)
        #expect(env.log == ["suback 1 duplicate_subscription_id"])
    }

    @Test("above max_subscriptions is too_many_subscriptions, checked before the request's own errors")
    func tooMany() throws {
        let env = try F.environment()
        var machine = F.active(env)  // max 3
        for id in UInt32(1)...3 { machine.subscribe(id, F.subscribe(), env) }
        env.clear()
        machine.subscribe(4, .failure(OperationError(.invalidFilter, "bad")), env)
        #expect(env.log == ["suback 4 too_many_subscriptions"])
    }

    @Test("a SUB the wire layer refused (filter, start value, durable name) is answered with its code")
    func wireRefusal() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, .failure(OperationError(.invalidFilter, "bad")), env)
        machine.subscribe(2, .failure(OperationError(.invalidStartPosition, "last 0")), env)
        #expect(env.log == ["suback 1 invalid_filter", "suback 2 invalid_start_position"])
        #expect(machine.session?.subscriptions.count == 0)
    }

    @Test("a filter the policy does not allow is not_authorized and audited as subscribe_denied")
    func notAuthorized() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe("u.>"), env)
        #expect(env.log == ["suback 1 not_authorized"])
        #expect(env.audits == ["subscribe_denied"])
    }

    @Test("a durable name attached elsewhere is durable_in_use")
    func durableInUse() throws {
        let env = try F.environment()
        env.durablesElsewhere = ["d"]
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d"), env)
        #expect(env.log == ["suback 1 durable_in_use"])
    }

    @Test("a durable cursor that exists resumes after it and the start position is ignored")
    func durableResume() throws {
        let env = try F.environment()
        env.cursors["d"] = 17
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(start: .earliest, durable: "d"), env)
        #expect(env.log == ["claim d", "route 1 t.>", "suback 1 first 18", "pump"])
        #expect(machine.session?.subscriptions[1]?.durableName == "d")
        // Detaching re-commits the resumed cursor, so the name is released after
        // the commits queued before it (a filter adopted at resume among them).
        machine.unsubscribe(1, env)
        #expect(env.log.suffix(2) == ["unroute 1", "detach d 17"])
    }

    @Test("a durable stored with another filter refuses the SUB, names the stored filter and releases the name")
    func durableFilterMismatch() throws {
        let env = try F.environment()
        env.cursors["d"] = 17
        env.cursorFilters["d"] = "t.a"
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe("t.>", durable: "d"), env)
        #expect(env.log == ["claim d", "release d", "suback 1 durable_filter_mismatch"])
        #expect(machine.session?.subscriptions[1] == nil)
        machine.subscribe(2, F.subscribe("t.a", durable: "d"), env)
        #expect(env.log.suffix(3) == ["route 2 t.a", "suback 2 first 18", "pump"])
    }

    @Test("a new durable name at the owner's max_durables is too_many_durables before the start position is read, and releases the name; a held one resumes")
    func durableLimit() throws {
        let env = try F.environment()
        var limits = F.limits
        limits.maxDurables = 2
        env.heldDurables = 2
        env.startError = .readersFull(maxReaders: 1)  // never reached for the refused name
        env.cursors["held"] = 5
        var machine = F.active(limits: limits, env)
        machine.subscribe(1, F.subscribe(start: .earliest, durable: "new"), env)
        #expect(env.log == ["claim new", "release new", "suback 1 too_many_durables"])
        #expect(machine.session?.subscriptions[1] == nil)
        machine.subscribe(2, F.subscribe(durable: "held"), env)
        #expect(env.log.suffix(3) == ["route 2 t.>", "suback 2 first 6", "pump"])
        env.heldDurables = 1
        env.startError = nil
        machine.subscribe(3, F.subscribe(durable: "new"), env)
        #expect(env.log.suffix(2) == ["suback 3 first 1", "pump"])
    }

    @Test("a start position the log cannot resolve refuses the SUB with the store's code and releases the name")
    func startFailure() throws {
        let env = try F.environment()
        env.startError = .readersFull(maxReaders: 1)
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(start: .earliest, durable: "d"), env)
        #expect(env.log.first == "claim d")
        #expect(env.log.dropFirst() == ["release d", "suback 1 storage_failure"])
        #expect(machine.session?.subscriptions.count == 0)
    }

    @Test("UNSUB ends the subscription without an answer")
    func unsubscribe() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(), env)
        env.clear()
        machine.unsubscribe(1, env)
        #expect(env.log == ["unroute 1"])
        machine.subscribe(1, F.subscribe(), env)  // the id can be reused at once
        #expect(env.log.contains("suback 1 first 1"))
    }

    @Test("UNSUB, CREDIT and ACK for an id that is not open are ERR unknown_subscription naming it")
    func unknownSubscription() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.unsubscribe(5, env)
        machine.grantCredit(6, 10, env)
        machine.acknowledge(7, through: 1, env)
        #expect(env.log == ["err 5 unknown_subscription", "err 6 unknown_subscription", "err 7 unknown_subscription"])
        #expect(!machine.isClosed)  // operation-level: the connection stays
    }

    @Test("CREDIT adds to the outstanding credit and schedules delivery")
    func credit() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(credit: 0), env)
        env.clear()
        machine.grantCredit(1, 5, env)
        #expect(env.log == ["pump"])
        #expect(machine.session?.subscriptions[1]?.delivery.credit == 5)
    }

    @Test("outstanding credit above 2^32-1 is credit_overflow, which closes the connection")
    func creditOverflow() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(credit: .max), env)
        env.clear()
        machine.grantCredit(1, 0, env)  // exactly 2^32-1 outstanding: allowed
        #expect(env.log == ["pump"])
        machine.grantCredit(1, 1, env)
        #expect(env.log == ["pump", "close credit_overflow"])
        #expect(machine.isClosed)
    }

    @Test("ACK on a durable cumulative subscription commits the cursor at the batch end, never past what was delivered")
    func ackCommitsCursor() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", ackMode: .cumulative), env)
        machine.deliverLive([F.live(1), F.live(2), F.live(3)], env)
        env.clear()
        machine.acknowledge(1, through: 2, env)
        machine.acknowledge(1, through: 1, env)  // backwards: the cursor stays
        machine.readBatchEnded(env)
        #expect(env.log == ["commit d 2"])
        machine.acknowledge(1, through: 99, env)
        machine.readBatchEnded(env)
        #expect(env.log == ["commit d 2", "commit d 3"])
    }

    @Test("ACK on an ack_mode none or an ephemeral subscription is ignored")
    func ackIgnored() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", credit: 0, ackMode: .none), env)
        machine.subscribe(2, F.subscribe(credit: 0, ackMode: .cumulative), env)
        env.clear()
        machine.acknowledge(1, through: 5, env)
        machine.acknowledge(2, through: 5, env)
        machine.readBatchEnded(env)
        #expect(env.log.isEmpty)
    }

    @Test("UNSUB of a durable subscription detaches it after its highest ACK")
    func durableUnsubscribe() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", ackMode: .cumulative), env)
        machine.deliverLive([F.live(1), F.live(2)], env)
        machine.acknowledge(1, through: 2, env)
        env.clear()
        machine.unsubscribe(1, env)
        #expect(env.log == ["unroute 1", "detach d 2"])
        machine.readBatchEnded(env)  // the pending ACK went with the subscription
        #expect(env.log == ["unroute 1", "detach d 2"])
    }
}
