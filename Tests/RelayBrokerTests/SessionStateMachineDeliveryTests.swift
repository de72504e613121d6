import RelayCore
import RelayStore
import RelayWire
import Testing
@testable import RelayBroker

/// MSG delivery: credit, replay then live, the peer's frame limit, durable
/// cursors of `ack_mode` none, `time` starts (Protocol/relay-v1.md §4.6, §4.11).
@Suite("Session state machine: delivery")
struct SessionStateMachineDeliveryTests {
    typealias F = SessionFixture

    @Test("live messages go out within credit; the rest wait for CREDIT")
    func liveWithinCredit() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(credit: 2), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(2), F.live(3)], env)
        #expect(env.log == ["msg 1 1", "msg 1 2"])
        machine.grantCredit(1, 1, env)
        machine.pump(env)
        #expect(env.log == ["msg 1 1", "msg 1 2", "pump", "msg 1 3"])
    }

    @Test("a start in the past replays from the log, flagged, then continues live without a gap")
    func replayThenLive() throws {
        let env = try F.environment()
        env.watermark = 3
        env.resolvedStart = 1
        env.stored = [F.stored(1), F.stored(2, topic: "u.x"), F.stored(3)]
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(start: .earliest), env)
        env.clear()
        machine.deliverLive([F.live(4)], env)
        #expect(env.log == ["msg 1 1 replayed", "msg 1 3 replayed", "msg 1 4"])
    }

    @Test("messages the router left out (its queue to the session was full) come from the store, in order, without a gap or a duplicate")
    func routerOverflowReadsTheStore() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(credit: 10), env)
        env.stored = [F.stored(1), F.stored(2), F.stored(3)]
        env.clear()
        // Message 1 arrived live; 2 and 3 were left out by the router.
        machine.deliverLive([F.live(1)], overflowThrough: 3, env)
        machine.deliverLive([F.live(4)], env)
        #expect(env.log.filter { $0.hasPrefix("msg") } == ["msg 1 1", "msg 1 2 replayed", "msg 1 3 replayed", "msg 1 4"])
    }

    @Test("nothing is written while the peer is not taking output")
    func notWritable() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(), env)
        env.clear()
        env.canDeliver = false
        machine.deliverLive([F.live(1)], env)
        #expect(env.log.isEmpty)
        env.canDeliver = true
        machine.pump(env)
        #expect(env.log == ["msg 1 1"])
    }

    @Test("a MSG above the peer's frame limit ends that subscription with payload_too_large at once")
    func oversizeEphemeral() throws {
        let env = try F.environment()
        env.oversize = [2]
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(), env)
        machine.subscribe(2, F.subscribe(), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(2), F.live(3), F.live(1, subscription: 2)], env)
        #expect(env.log.filter { $0.hasPrefix("msg 1") } == ["msg 1 1"])
        #expect(env.log.contains("err 1 payload_too_large"))
        #expect(env.log.contains("unroute 1"))
        #expect(env.log.contains("msg 2 1"))  // the other subscription is not affected
        #expect(machine.session?.subscriptions[1] == nil)
    }

    @Test("an oversize MSG moves a durable cursor past it, so a resume does not hit it again")
    func oversizeDurable() throws {
        let env = try F.environment()
        env.oversize = [2]
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", ackMode: .cumulative), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(2)], env)
        #expect(env.log == ["msg 1 1", "unroute 1", "detach d 2", "err 1 payload_too_large"])
    }

    @Test("a durable whose cursor commit found it deleted or moved elsewhere ends with that code, its cursor not committed at the detach; other subscriptions stay")
    func durableCursorLost() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", ackMode: .none), env)
        machine.subscribe(2, F.subscribe(durable: "e", ackMode: .none), env)
        machine.deliverLive([F.live(1), F.live(2)], env)
        env.clear()
        let owner = try #require(machine.session?.durableOwner)
        machine.durableCursorLost(owner: owner, name: "d", code: .durableDeleted, message: "gone", env)
        #expect(env.log == ["unroute 1", "detach d -", "err 1 durable_deleted"])
        #expect(machine.session?.subscriptions[1] == nil && machine.session?.subscriptions[2] != nil)
        env.clear()
        // A second report (a later commit of the same attachment) finds nothing to end.
        machine.durableCursorLost(owner: owner, name: "d", code: .durableDeleted, message: "gone", env)
        machine.durableCursorLost(owner: owner, name: "e", code: .durableInUse, message: "moved", env)
        #expect(env.log == ["unroute 2", "detach e -", "err 2 durable_in_use"])
    }

    @Test("ack_mode none: a durable cursor advances as messages are sent, one commit per delivery turn")
    func ackModeNoneAdvances() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", ackMode: .none), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(2)], env)
        #expect(env.log == ["msg 1 1", "msg 1 2", "commit d 2"])
        env.clear()
        machine.unsubscribe(1, env)
        #expect(env.log == ["unroute 1", "detach d 2"])
    }

    @Test("ack_mode cumulative: sending alone does not move the cursor")
    func cumulativeWaitsForAck() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(durable: "d", ackMode: .cumulative), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(2)], env)
        machine.unsubscribe(1, env)
        #expect(env.log == ["msg 1 1", "msg 1 2", "unroute 1", "detach d -"])
    }

    @Test("a time start in the future skips messages committed before that time, without using credit")
    func futureTimeStart() throws {
        let env = try F.environment()
        env.resolvedStart = 1  // nothing at or after the time is stored yet
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(start: .time(100), credit: 1), env)
        env.clear()
        machine.deliverLive([F.live(1, timestamp: 50), F.live(2, timestamp: 99), F.live(3, timestamp: 100),
                             F.live(4, timestamp: 101)], env)
        #expect(env.log == ["msg 1 3"])
    }

    @Test("a time start skips replayed messages before that time too")
    func timeStartReplay() throws {
        let env = try F.environment()
        env.watermark = 3
        env.resolvedStart = 1
        env.stored = [F.stored(1, timestamp: 10), F.stored(2, timestamp: 20), F.stored(3, timestamp: 30)]
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(start: .time(20)), env)
        env.clear()
        machine.pump(env)
        #expect(env.log == ["msg 1 2 replayed", "msg 1 3 replayed"])
    }

    @Test("a replay the log cannot read ends the subscription with the store's code")
    func replayFailure() throws {
        let env = try F.environment()
        env.watermark = 3
        env.readError = .readersFull(maxReaders: 1)
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(start: .earliest), env)
        env.clear()
        machine.pump(env)
        #expect(env.log == ["unroute 1", "err 1 storage_failure"])
    }

    @Test("a delivery turn stops at its budget and schedules the next one")
    func budget() throws {
        let env = try F.environment()
        var limits = F.limits
        limits.deliveryBudget = 2
        var machine = F.active(limits: limits, env)
        machine.subscribe(1, F.subscribe(), env)
        env.clear()
        machine.deliverLive([F.live(1), F.live(2), F.live(3)], env)
        #expect(env.log == ["msg 1 1", "msg 1 2", "pump"])
        env.clear()
        machine.pump(env)
        #expect(env.log == ["msg 1 3"])
    }

    @Test("messages for a subscription that is not open are dropped")
    func unknownSubscriptionDropped() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.deliverLive([F.live(1, subscription: 9)], env)
        #expect(env.log.isEmpty)
    }

    @Test("after the client's BYE no more MSG is sent, while the PUBs before it are still answered")
    func noDeliveryAfterBye() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(), env)
        machine.publish(1, F.publish(1), env)
        machine.goodbye(env)
        env.clear()
        machine.deliverLive([F.live(1)], env)
        machine.pump(env)
        #expect(env.log.isEmpty)
        machine.commitCompleted(ids: [1], results: [F.receipt(1)], env)
        #expect(env.log == ["puback 1 seq 1", "bye"])
    }

    @Test("deliveries continue while a shutdown drains, and stop once closed")
    func deliveryWhileShuttingDown() throws {
        let env = try F.environment()
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe(), env)
        machine.publish(1, F.publish(1), env)
        machine.shutdown(env)
        env.clear()
        machine.deliverLive([F.live(1)], env)
        #expect(env.log == ["msg 1 1"])
        machine.commitCompleted(ids: [1], results: [F.receipt(1)], env)
        #expect(env.log == ["msg 1 1", "puback 1 seq 1", "close server_shutting_down"])
        env.clear()
        machine.deliverLive([F.live(2)], env)
        #expect(env.log.isEmpty)
    }
}
