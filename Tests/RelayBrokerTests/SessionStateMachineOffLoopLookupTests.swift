import RelayCore
import RelayPolicy
import RelayStore
import Testing
@testable import RelayBroker

private typealias F = SessionFixture

/// On a log whose reads wait on a service, a SUB's look-ups are made off
/// the event loop: the machine asks for them (`lookup <id>`), reads no other
/// request until they are answered, then opens or refuses the SUB as it
/// would inline (Protocol/relay-v1.md §4.6). The end-to-end side is
/// `SubscribeLookupOffLoopTests`.
@Suite("session state machine: a SUB's look-ups off the event loop")
struct SessionStateMachineOffLoopLookupTests {
    /// An active machine whose environment defers look-ups, with durable SUB 1 (`d`, `t.>`) waiting for its answer.
    private static func waiting(start: StartPosition = .latest) throws -> (SessionStateMachine, RecordingEnvironment) {
        let env = try F.environment()
        env.readsWait = true
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe("t.>", start: start, durable: "d"), env)
        return (machine, env)
    }

    @Test("the SUB claims its name and asks for its look-ups; nothing is answered and no request is read until they are")
    func subscribeWaitsForItsLookups() throws {
        let (machine, env) = try Self.waiting()
        #expect(env.log == ["claim d", "lookup 1"])
        #expect(machine.holdsRequests)
        #expect(machine.readsPaused)
        #expect(machine.session?.subscriptions.count == 0)
    }

    @Test("a fresh answer opens the subscription at the answer's start, then reading resumes")
    func freshAnswerOpens() throws {
        var (machine, env) = try Self.waiting(start: .earliest)
        env.clear()
        machine.startLookedUp(1, .success(.fresh(start: 7)), env)
        #expect(env.log == ["route 1 t.>", "suback 1 first 7", "pump", "resume"])
        #expect(!machine.holdsRequests)
        #expect(!machine.readsPaused)
        #expect(machine.session?.subscriptions.count == 1)
    }

    @Test("a resumed durable starts after its cursor; another stored filter is refused and the name released")
    func resumedAnswers() throws {
        var (machine, env) = try Self.waiting()
        env.clear()
        machine.startLookedUp(1, .success(.resumed(DurableCursor(sequence: 41, filter: "t.>"))), env)
        #expect(env.log == ["route 1 t.>", "suback 1 first 42", "pump", "resume"])

        var (other, otherEnv) = try Self.waiting()
        otherEnv.clear()
        other.startLookedUp(1, .success(.resumed(DurableCursor(sequence: 41, filter: "t.a"))), otherEnv)
        #expect(otherEnv.log == ["release d", "suback 1 durable_filter_mismatch", "resume"])
        #expect(other.session?.subscriptions.count == 0)
    }

    @Test("over the durable limit, or a failed look-up: refused, typed, the name released")
    func refusedAnswers() throws {
        var (machine, env) = try Self.waiting()
        env.clear()
        let owner = try #require(machine.session?.durableOwner)
        machine.startLookedUp(1, .success(.overDurableLimit(held: 1_000, owner: owner)), env)
        #expect(env.log == ["release d", "suback 1 too_many_durables", "resume"])

        var (failed, failedEnv) = try Self.waiting()
        failedEnv.clear()
        failed.startLookedUp(1, .failure(.unavailable("no cursor bucket leader")), failedEnv)
        #expect(failedEnv.log == ["release d", "suback 1 storage_unavailable", "resume"])
        #expect(!failed.holdsRequests)
    }

    @Test("an answer for another id, or a second answer, changes nothing")
    func strayAnswersAreIgnored() throws {
        var (machine, env) = try Self.waiting()
        env.clear()
        machine.startLookedUp(2, .success(.fresh(start: nil)), env)
        #expect(env.log.isEmpty)
        #expect(machine.holdsRequests)
        machine.startLookedUp(1, .success(.fresh(start: nil)), env)
        env.clear()
        machine.startLookedUp(1, .success(.fresh(start: nil)), env)
        #expect(env.log.isEmpty)
        #expect(machine.session?.subscriptions.count == 1)
    }

    @Test("a session torn down while its SUB waits releases the name; the late answer does nothing")
    func tearDownReleasesThePendingName() throws {
        var (machine, env) = try Self.waiting()
        env.clear()
        machine.tearDown(env)
        #expect(env.log == ["release d"])
        env.clear()
        machine.startLookedUp(1, .success(.fresh(start: nil)), env)
        #expect(env.log.isEmpty)
    }

    @Test("a reload that withdraws the filter while the SUB waits: refused not_authorized when the answer comes")
    func reloadWhileWaitingRefuses() throws {
        var (machine, env) = try Self.waiting()
        let narrower = try Policy(definitions: [RuleDefinition(name: "all", publish: ["t.>"], subscribe: ["t.b"])])
        machine.reevaluate(verification: nil, policy: narrower, env)
        env.clear()
        machine.startLookedUp(1, .success(.fresh(start: nil)), env)
        #expect(env.log == ["release d", "suback 1 not_authorized", "resume"])
        #expect(env.audits.contains("subscribe_denied"))
    }

    @Test("an ephemeral SUB waits too, and has no name to release")
    func ephemeralWaits() throws {
        let env = try F.environment()
        env.readsWait = true
        var machine = F.active(env)
        machine.subscribe(3, F.subscribe("t.>", start: .earliest), env)
        #expect(env.log == ["lookup 3"])
        machine.tearDown(env)
        #expect(env.log == ["lookup 3"])
    }

    @Test("inline look-ups on a local log: the same answers, no lookup action")
    func inlineLookups() throws {
        let env = try F.environment()
        env.cursors["d"] = 9
        var machine = F.active(env)
        machine.subscribe(1, F.subscribe("t.>", durable: "d"), env)
        #expect(env.log == ["claim d", "route 1 t.>", "suback 1 first 10", "pump"])
        #expect(!machine.holdsRequests)
    }
}
