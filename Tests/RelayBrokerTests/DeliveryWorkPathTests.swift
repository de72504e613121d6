import RelayCore
import RelayStore
import RelayTestSupport
import Testing
@testable import RelayBroker

/// Every way a subscription gets work for the delivery turn, beside idle
/// subscriptions of the same connection. The turn visits only the
/// subscriptions the table queued as having work (`SubscriptionTable`):
/// a path that gave work without queueing would lose delivery. These pin
/// the MSG, commit and ERR lines of each path (the same before and after
/// the queue: a pure speed change), and that nothing with work is left out
/// of the queue (``SubscriptionTable/forgottenWork``).
@Suite("delivery turns: every path that gives a subscription work")
struct DeliveryWorkPathTests {
    typealias F = SessionFixture
    static let idle = 50

    /// A session with `idle` idle subscriptions (ids 100..., credit, nothing
    /// routed to them), their first turn run, and the log cleared.
    static func withIdle(_ env: RecordingEnvironment, bufferLimit: Int = 100) -> SessionStateMachine {
        var limits = SessionLimits(maxInFlightPublishes: 4, maxSubscriptions: idle + 10, subscriptionBuffer: bufferLimit)
        limits.deliveryBudget = 8_192
        var machine = F.active(limits: limits, env)
        for i in 0..<idle { machine.subscribe(UInt32(100 + i), F.subscribe("t.idle.\(i)"), env) }
        machine.pump(env)
        env.clear()
        return machine
    }

    static func messages(_ env: RecordingEnvironment) -> [String] {
        env.log.filter { !$0.hasPrefix("pump") }
    }

    static func expectNothingForgotten(_ machine: SessionStateMachine, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(machine.session?.subscriptions.forgottenWork == [], sourceLocation: sourceLocation)
    }

    @Test("CREDIT after credit ran out sends what was buffered meanwhile")
    func creditAfterZero() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env)
        machine.subscribe(1, F.subscribe(credit: 0), env)
        machine.subscribe(2, F.subscribe(credit: 1), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(2), F.live(1, subscription: 2), F.live(2, subscription: 2)], env)
        #expect(Self.messages(env) == ["msg 2 1"])
        Self.expectNothingForgotten(machine)
        env.clear()
        machine.grantCredit(1, 5, env)
        machine.grantCredit(2, 5, env)
        Self.expectNothingForgotten(machine)
        machine.pump(env)
        #expect(Self.messages(env).sorted() == ["msg 1 1", "msg 1 2", "msg 2 2"])
        Self.expectNothingForgotten(machine)
    }

    @Test("messages the router left out are read from the store, also by a subscription the batch did not reach")
    func overflowThrough() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env)
        machine.subscribe(1, F.subscribe("t.a"), env)
        machine.subscribe(2, F.subscribe("t.b"), env)
        machine.subscribe(3, F.subscribe("t.c", credit: 0), env)
        env.stored = [F.stored(1), F.stored(2, topic: "t.b"), F.stored(3), F.stored(4, topic: "t.c")]
        env.watermark = 4
        env.clear()
        machine.deliverLive([F.live(1)], overflowThrough: 4, env)
        #expect(Self.messages(env) == ["msg 1 1", "msg 1 3 replayed", "msg 2 2 replayed"]
                    || Self.messages(env) == ["msg 1 1", "msg 2 2 replayed", "msg 1 3 replayed"])
        Self.expectNothingForgotten(machine)
        env.clear()
        machine.grantCredit(3, 1, env)
        machine.pump(env)
        #expect(Self.messages(env) == ["msg 3 4 replayed"])
        Self.expectNothingForgotten(machine)
    }

    @Test("a buffer that overflowed is dropped; CREDIT then reads the dropped part from the store, then the rest live")
    func bufferDropped() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env, bufferLimit: 2)
        machine.subscribe(1, F.subscribe(credit: 0), env)
        env.stored = (1...3).map { F.stored($0) }
        env.clear()
        machine.deliverLive((1...5).map { F.live($0) }, env)
        #expect(Self.messages(env).isEmpty)
        Self.expectNothingForgotten(machine)
        machine.grantCredit(1, 10, env)
        machine.pump(env)
        #expect(Self.messages(env) == ["msg 1 1 replayed", "msg 1 2 replayed", "msg 1 3 replayed", "msg 1 4", "msg 1 5"])
        Self.expectNothingForgotten(machine)
    }

    @Test("a SUB from a sequence in the past replays it, at once or once CREDIT comes")
    func replayFromSequence() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env)
        env.watermark = 5
        env.stored = (1...5).map { F.stored($0) }
        machine.subscribe(1, F.subscribe(start: .sequence(3)), env)
        machine.subscribe(2, F.subscribe(start: .sequence(4), credit: 0), env)
        env.clear()
        machine.pump(env)
        #expect(Self.messages(env) == ["msg 1 3 replayed", "msg 1 4 replayed", "msg 1 5 replayed"])
        Self.expectNothingForgotten(machine)
        env.clear()
        machine.grantCredit(2, 1, env)
        machine.pump(env)
        machine.grantCredit(2, 1, env)
        machine.deliverLive([F.live(6, subscription: 2)], env)
        #expect(Self.messages(env) == ["msg 2 4 replayed", "msg 2 5 replayed"])
        Self.expectNothingForgotten(machine)
        env.clear()
        machine.grantCredit(2, 1, env)
        machine.pump(env)
        #expect(Self.messages(env) == ["msg 2 6"])
    }

    @Test("ack_mode none: the durable cursor follows what is sent, written at once or from the buffer, in a mixed batch")
    func durableNoneCursor() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env)
        machine.subscribe(1, F.subscribe(durable: "d", credit: 2, ackMode: .none), env)
        machine.subscribe(2, F.subscribe(durable: "e", credit: 10, ackMode: .none), env)
        machine.pump(env)  // the SUBs' turn: neither is queued now
        env.clear()
        // Runs of 1, 2, 1 again: 1's third message waits for credit.
        machine.deliverLive([F.live(1), F.live(1, subscription: 2), F.live(2), F.live(3)], env)
        #expect(Self.messages(env) == ["msg 1 1", "msg 2 1", "msg 1 2", "commit d 2", "commit e 1"]
                    || Self.messages(env) == ["msg 1 1", "msg 2 1", "msg 1 2", "commit e 1", "commit d 2"])
        Self.expectNothingForgotten(machine)
        env.clear()
        machine.grantCredit(1, 1, env)
        machine.pump(env)
        #expect(Self.messages(env) == ["msg 1 3", "commit d 3"])
        env.clear()
        machine.unsubscribe(1, env)
        machine.unsubscribe(2, env)
        #expect(env.log == ["unroute 1", "detach d 3", "unroute 2", "detach e 1"])
    }

    @Test("a subscription the turn ends (too large, a failed read) does not hold back the others of that turn")
    func endedMidTurn() throws {
        let env = try F.environment()
        env.oversize = [2]
        var machine = Self.withIdle(env)
        for id: UInt32 in 1...3 { machine.subscribe(id, F.subscribe(credit: 0), env) }
        env.clear()
        machine.deliverLive([1, 2, 3].flatMap { id in [F.live(1, subscription: id), F.live(2, subscription: id)] }, env)
        for id: UInt32 in 1...3 { machine.grantCredit(id, 5, env) }
        machine.pump(env)
        for id in 1...3 {
            #expect(env.log.contains("msg \(id) 1"))
            #expect(env.log.contains("err \(id) payload_too_large"))
        }
        Self.expectNothingForgotten(machine)
        // The ids are open again; the new subscriptions get their own messages.
        env.clear()
        env.oversize = []
        machine.subscribe(1, F.subscribe(credit: 1), env)
        machine.deliverLive([F.live(3)], env)
        #expect(Self.messages(env) == ["route 1 t.>", "suback 1 first 1", "msg 1 3"])
    }

    @Test("UNSUB of a subscription with work waiting for its turn, and the same id subscribed again before the turn")
    func unsubscribedBeforeItsTurn() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env)
        machine.subscribe(1, F.subscribe(credit: 0), env)
        machine.subscribe(2, F.subscribe(credit: 0), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(1, subscription: 2)], env)
        machine.grantCredit(1, 5, env)
        machine.grantCredit(2, 5, env)
        // Both wait for the turn CREDIT asked for; 1 goes, and comes back from sequence 2.
        machine.unsubscribe(1, env)
        env.watermark = 1
        env.stored = [F.stored(1)]
        machine.subscribe(1, F.subscribe(start: .sequence(1), credit: 5), env)
        env.clear()
        machine.pump(env)
        #expect(Self.messages(env).sorted() == ["msg 1 1 replayed", "msg 2 1"])
        Self.expectNothingForgotten(machine)
        env.clear()
        machine.deliverLive([F.live(2), F.live(2, subscription: 2)], env)
        #expect(Self.messages(env) == ["msg 1 2", "msg 2 2"])
    }

    @Test("UNSUB of a subscription with buffered messages gives their bytes back to the connection at once")
    func unsubscribeReleasesTheBuffer() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env)
        machine.subscribe(1, F.subscribe(credit: 0), env)
        machine.deliverLive([F.live(1), F.live(2), F.live(3)], env)
        #expect(machine.session?.deliveryBudget.used ?? 0 > 0)
        machine.unsubscribe(1, env)
        #expect(machine.session?.deliveryBudget.used == 0)
    }

    @Test("a peer that stops taking output keeps the work queued until it takes it again")
    func notWritableKeepsWork() throws {
        let env = try F.environment()
        var machine = Self.withIdle(env)
        machine.subscribe(1, F.subscribe(), env)
        env.clear()
        env.canDeliver = false
        machine.deliverLive([F.live(1), F.live(2)], env)
        machine.pump(env)
        #expect(env.log.isEmpty)
        Self.expectNothingForgotten(machine)
        env.canDeliver = true
        machine.pump(env)
        #expect(env.log == ["msg 1 1", "msg 1 2"])
    }

    /// One subscription as the client saw it: SUB to UNSUB.
    private struct Opened {
        var filter: TopicFilter
        var first: UInt64 = 0
        var delivered: [UInt64] = []
        var open = true
    }

    @Test("random SUB, UNSUB, CREDIT, publishes, router overflows and stalls: nothing with work is left out, nothing lost", arguments: [1, 2, 3, 4, 5])
    func randomOperations(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        let env = try F.environment()
        var machine = Self.withIdle(env, bufferLimit: 3)
        let topics = ["t.a", "t.b", "t.c"], filters = ["t.a", "t.b", "t.>"]
        let parsed = try topics.map { try Topic($0) }
        var instances: [Opened] = []
        var current: [UInt32: Int] = [:]  // id -> index in instances
        var seen = 0
        func absorb() {
            for line in env.log[seen...] {
                let words = line.split(separator: " ")
                guard words.count >= 3, let id = UInt32(words[1]), let index = current[id] else { continue }
                if words[0] == "suback", words[2] == "first", let first = UInt64(words[3]) { instances[index].first = first }
                if words[0] == "msg", let sequence = UInt64(words[2]) { instances[index].delivered.append(sequence) }
            }
            seen = env.log.count
        }
        for step in 0..<400 {
            let id = UInt32(1 + random.next(below: 4))
            switch random.next(below: 10) {
            case 0 where current[id] == nil:
                let filter = try TopicFilter(filters[Int(random.next(below: 3))])
                let start: StartPosition = random.next(below: 2) == 0 || env.watermark == 0
                    ? .latest : .sequence(1 + random.next(below: env.watermark))
                current[id] = instances.count
                instances.append(Opened(filter: filter))
                machine.subscribe(id, .success(SubscribeRequest(filter: filter, start: start, durableName: "",
                                                                initialCredit: UInt32(random.next(below: 3)), ackMode: .none)), env)
            case 1 where current[id] != nil:
                machine.unsubscribe(id, env)
                absorb()
                if let index = current.removeValue(forKey: id) { instances[index].open = false }
            case 2, 3:
                if current[id] != nil { machine.grantCredit(id, UInt32(1 + random.next(below: 3)), env) }
            case 4, 5, 6:
                // A publish: stored, then routed to the open subscriptions it matches, unless the router drops it.
                let sequence = env.watermark + 1
                let pick = Int(random.next(below: 3))
                env.stored.append(F.stored(sequence, topic: topics[pick]))
                env.watermark = sequence
                let routed = current.sorted { $0.key < $1.key }.filter { instances[$0.value].filter.matches(parsed[pick]) }.map(\.key)
                if random.next(below: 6) == 0 {
                    // The router's queue to the session is full: the notice instead (Router.publish).
                    machine.deliverLive([], overflowThrough: sequence, env)
                } else {
                    machine.deliverLive(routed.map { F.live(sequence, subscription: $0) }, env)
                }
            case 7: env.canDeliver.toggle()
            default: machine.pump(env)
            }
            absorb()
            #expect(machine.session?.subscriptions.forgottenWork == [], "seed \(seed), step \(step)")
        }
        // The peer taking output and credit for everything: all is delivered.
        env.canDeliver = true
        for id in current.keys { machine.grantCredit(id, 10_000, env) }
        for _ in 0..<10 { machine.pump(env) }
        absorb()
        for instance in instances {
            let expected = env.stored.filter { $0.sequence >= instance.first && instance.filter.matches($0.topic) }.map(\.sequence)
            if instance.open {
                #expect(instance.delivered == expected, "seed \(seed): \(instance.filter) from \(instance.first)")
            } else {
                #expect(Array(expected.prefix(instance.delivered.count)) == instance.delivered,
                        "seed \(seed): \(instance.filter) from \(instance.first), until UNSUB")
            }
        }
    }
}
