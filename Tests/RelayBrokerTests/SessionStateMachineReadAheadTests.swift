import RelayCore
import RelayStore
import Testing
@testable import RelayBroker

private typealias F = SessionFixture

/// On a log whose reads wait on a service, a replay's batches are read off
/// the event loop: a turn asks for a read (`read <id> from <seq>`), skips
/// the subscription until the answer, then sends the batch through the same
/// steps as an inline read. The end-to-end side is `SubscribeLookupOffLoopTests`.
@Suite("session state machine: replay reads off the event loop")
struct SessionStateMachineReadAheadTests {
    /// A batch of stored messages `sequences` on `t.a`, the read stopping before `next`.
    private static func batch(_ sequences: ClosedRange<UInt64>, next: UInt64) -> Result<ReadBatch, StoreError> {
        .success(ReadBatch(messages: sequences.map { F.stored($0) }, next: next, reachedEnd: false))
    }

    /// The `index`-th replay read the machine asked for (the test fails, not crashes, without it).
    private static func read(_ index: Int, _ env: RecordingEnvironment) throws -> ReplayRead {
        try #require(env.replayReads.indices.contains(index) ? env.replayReads[index] : nil, "no read \(index) was asked for")
    }

    /// An active machine whose environment reads off the loop, with
    /// subscription `id` open from sequence 1 over a log holding 1...5
    /// (the watermark), its first read asked for and recorded.
    private static func replaying(credit: UInt32 = 10, id: UInt32 = 1) throws -> (SessionStateMachine, RecordingEnvironment) {
        let env = try F.environment()
        env.readsWait = true
        env.watermark = 5
        var machine = F.active(env)
        machine.subscribe(id, F.subscribe("t.>", start: .earliest, credit: credit), env)
        machine.startLookedUp(id, .success(.fresh(start: 1)), env)
        machine.pump(env)
        return (machine, env)
    }

    @Test("a replay is read in batches off the loop, each sent in order, the next asked for from where it stopped")
    func batchesInOrder() throws {
        var (machine, env) = try Self.replaying()
        #expect(env.log.suffix(1) == ["read 1 from 1 max 10"])
        env.clear()
        machine.pump(env)  // a turn while the read is out: nothing, no second read
        #expect(env.log.isEmpty)
        machine.replayRead(1, try Self.read(0, env), Self.batch(1...3, next: 4), env)
        #expect(env.log == ["msg 1 1 replayed", "msg 1 2 replayed", "msg 1 3 replayed", "read 1 from 4 max 7"])
        env.clear()
        machine.replayRead(1, try Self.read(1, env), Self.batch(4...5, next: 6), env)
        #expect(env.log == ["msg 1 4 replayed", "msg 1 5 replayed"], "the replay reached the watermark: no more reads")
        #expect(machine.session?.subscriptions.forgottenWork == [])
    }

    @Test("out of credit inside a batch: the rest waits for CREDIT and is sent without reading again")
    func creditInsideABatch() throws {
        var (machine, env) = try Self.replaying(credit: 2)
        env.clear()
        machine.replayRead(1, try Self.read(0, env), Self.batch(1...3, next: 4), env)
        #expect(env.log == ["msg 1 1 replayed", "msg 1 2 replayed"])
        env.clear()
        machine.grantCredit(1, 10, env)
        machine.pump(env)
        #expect(env.log == ["pump", "msg 1 3 replayed", "read 1 from 4 max 9"])
    }

    @Test("an answer for an ended subscription, or for an earlier read of a reused id, sends nothing")
    func staleAnswersAreDropped() throws {
        var (machine, env) = try Self.replaying()
        machine.unsubscribe(1, env)
        machine.subscribe(1, F.subscribe("t.>", start: .earliest, credit: 10), env)
        machine.startLookedUp(1, .success(.fresh(start: 1)), env)
        env.clear()
        machine.replayRead(1, try Self.read(0, env), Self.batch(3...5, next: 6), env)  // the first subscription's read
        #expect(env.log.isEmpty, "the old read's messages went to the new subscription")
        machine.pump(env)
        #expect(env.log == ["read 1 from 1 max 10"])
        env.clear()
        machine.replayRead(1, try Self.read(1, env), Self.batch(1...5, next: 6), env)
        #expect(env.log == (1...5).map { "msg 1 \($0) replayed" })
    }

    @Test("a failed read ends the subscription with the log's code")
    func failedReadEnds() throws {
        var (machine, env) = try Self.replaying()
        env.clear()
        machine.replayRead(1, try Self.read(0, env), .failure(.unavailable("no stream leader")), env)
        #expect(env.log == ["unroute 1", "err 1 storage_unavailable"])
        #expect(machine.session?.subscriptions.count == 0)
    }

    @Test("a message above the peer's frame limit in a batch ends the subscription, payload_too_large")
    func tooLargeInABatch() throws {
        var (machine, env) = try Self.replaying()
        env.oversize = [2]
        env.clear()
        machine.replayRead(1, try Self.read(0, env), Self.batch(1...3, next: 4), env)
        #expect(env.log == ["msg 1 1 replayed", "unroute 1", "err 1 payload_too_large"])
    }

    @Test("a batch that moves nothing (the log has nothing past it yet) asks for no read until something new comes")
    func emptyBatchStalls() throws {
        var (machine, env) = try Self.replaying()
        env.clear()
        machine.replayRead(1, try Self.read(0, env), .success(ReadBatch(messages: [], next: 1, reachedEnd: true)), env)
        #expect(env.log.isEmpty)
        machine.grantCredit(1, 1, env)
        machine.pump(env)
        #expect(env.log == ["pump", "read 1 from 1 max 11"])
    }
}
