import NIOConcurrencyHelpers
import RelayStore
import Testing
@testable import RelayBroker

/// ``OffLoopLogReads`` runs a JetStream edge's reads (a SUB's look-ups, of
/// which a cursor read retries for up to 8 s during an election; replay
/// batches) on threads of their own. They must start at once while others
/// wait on NATS, never more than `[storage.jetstream] read_threads` at a time,
/// and the shutdown waits only for those already reading.
///
/// The reads here block on a ``ReadGate`` the test or another read opens:
/// each wait is for an event, and the bound a held read gives up at is there
/// only so that a defect ends the test with a failure instead of a hang.
@Suite("Off-loop log reads", .timeLimit(.minutes(2)))
struct OffLoopLogReadsTests {
    /// A latch that reads block on (``wait(upTo:)``) until it is opened.
    final class ReadGate: Sendable {
        private let lock = ConditionLock(value: 0)
        func open() {
            lock.lock()
            lock.unlock(withValue: 1)
        }
        /// True once opened; false if `seconds` passed first.
        func wait(upTo seconds: Double) -> Bool {
            guard lock.lock(whenValue: 1, timeoutSeconds: seconds) else { return false }
            lock.unlock()
            return true
        }
    }

    /// How many reads are inside their body now, the most there were, and
    /// which bodies ran.
    final class ReadTally: Sendable {
        struct Counts { var now = 0, most = 0, ran: Set<Int> = [] }
        let counts = NIOLockedValueBox(Counts())
        func enter(_ id: Int) {
            counts.withLockedValue { c in
                c.now += 1
                c.most = max(c.most, c.now)
                c.ran.insert(id)
            }
        }
        func leave() { counts.withLockedValue { $0.now -= 1 } }
        var now: Int { counts.withLockedValue { $0.now } }
    }

    /// Starts `read` and returns its answer once `done` was called.
    static func answer<A: Sendable>(_ reads: OffLoopLogReads,
                                    _ read: @escaping @Sendable () throws(StoreError) -> A) async -> Result<A, StoreError> {
        await withCheckedContinuation { (answered: CheckedContinuation<Result<A, StoreError>, Never>) in
            reads.run(read) { answered.resume(returning: $0) }
        }
    }

    /// A read that counts itself in `tally`, waits for `gate` (giving up
    /// with an error after 30 s) and answers its `id`.
    static func gatedRead(_ id: Int, tally: ReadTally, gate: ReadGate) -> @Sendable () throws(StoreError) -> Int {
        { () throws(StoreError) -> Int in
            tally.enter(id)
            defer { tally.leave() }
            guard gate.wait(upTo: 30) else { throw StoreError.unavailable("the test's gate never opened") }
            return id
        }
    }

    /// Returns once `condition` holds, checking after each yield: the reads
    /// run on the pool's threads and change what it reads. Stops waiting if
    /// the test's time limit cancels it (the expectations after it then fail).
    static func until(_ condition: () -> Bool) async {
        while !condition() && !Task.isCancelled { await Task.yield() }
    }

    @Test("a read starts at once while 15 others wait on the service")
    func readStartsWhileOthersWait() async {
        let reads = OffLoopLogReads(threads: 16)
        let probeRan = ReadGate()
        let gaveUp = NIOLockedValueBox(0)
        // Each held read waits until the probe has run: if the probe gets no
        // thread while they hold theirs, they give up at 4 s and say so (a
        // pool thread takes it in microseconds; dispatch's pool adds about a
        // thread a second once its threads block).
        let held = (0..<15).map { _ in
            Task {
                await Self.answer(reads) { () throws(StoreError) -> Bool in
                    let released = probeRan.wait(upTo: 4)
                    if !released { gaveUp.withLockedValue { $0 += 1 } }
                    return released
                }
            }
        }
        let probe = await Self.answer(reads) { () throws(StoreError) -> Int in
            probeRan.open()
            return 7
        }
        #expect(probe == .success(7))
        for read in held {
            let released = await read.value
            #expect(released == .success(true))
        }
        #expect(gaveUp.withLockedValue { $0 } == 0, "held reads gave up before the probe got a thread")
        await reads.drain()
    }

    @Test("no more than read_threads reads run at once; the others wait for a thread, all are answered, and the counts for relay_storage_reads_running and _waiting follow")
    func atMostThreadsAtOnce() async {
        let observed = NIOLockedValueBox<[(running: Int, waiting: Int)]>([])
        let reads = OffLoopLogReads(threads: 2) { running, waiting in
            observed.withLockedValue { $0.append((running, waiting)) }
        }
        let last = { observed.withLockedValue { $0.last } }
        let tally = ReadTally()
        let gate = ReadGate()
        let all = (0..<6).map { id in
            Task {
                await Self.answer(reads, Self.gatedRead(id, tally: tally, gate: gate))
            }
        }
        // All six asked for: two on the pool's threads, four waiting for one
        // (reported before a read's body counts itself in the tally).
        await Self.until { (last().map { $0 == (2, 4) } ?? false) && tally.now >= 2 }
        #expect(tally.now == 2)
        gate.open()
        var answered: [Int] = []
        for read in all {
            if case .success(let id) = await read.value { answered.append(id) }
        }
        #expect(answered == Array(0..<6))
        let counts = tally.counts.withLockedValue { $0 }
        #expect(counts.most == 2, "reads in their body at once: \(counts.most)")
        #expect(counts.ran == Set(0..<6))
        let reported = observed.withLockedValue { $0 }
        let mostRunning = reported.map { $0.running }.max()
        let mostWaiting = reported.map { $0.waiting }.max()
        // Waiting may reach 6 for an instant: all asked for before a thread took one.
        #expect(mostRunning == 2 && (4...6).contains(mostWaiting ?? 0), "\(reported)")
        let settled = reported.last.map { $0 == (0, 0) } ?? false
        #expect(settled, "after the last answer: \(String(describing: reported.last))")
        await reads.drain()
    }

    @Test("the drain waits for the read running, answers the one still queued closed without reading, and refuses new ones")
    func drainWaitsForRunningOnly() async {
        let reads = OffLoopLogReads(threads: 1)
        let tally = ReadTally()
        let gate = ReadGate()
        let running = Task {
            await Self.answer(reads, Self.gatedRead(1, tally: tally, gate: gate))
        }
        await Self.until { tally.now == 1 }
        // Asked for now, so it waits for the one thread behind read 1.
        let queuedAnswer = NIOLockedValueBox<Result<Int, StoreError>?>(nil)
        reads.run({ () throws(StoreError) -> Int in
            tally.enter(2)
            tally.leave()
            return 2
        }) { answer in queuedAnswer.withLockedValue { $0 = answer } }
        let drained = NIOLockedValueBox(false)
        let drain = Task {
            await reads.drain()
            drained.withLockedValue { $0 = true }
        }
        await Self.until { reads.refusesNewReads }
        let late = await Self.answer(reads) { () throws(StoreError) -> Int in 3 }
        #expect(late == .failure(.closed))
        #expect(drained.withLockedValue { $0 } == false, "the drain returned while a read was running")
        gate.open()
        await drain.value
        #expect(await running.value == .success(1))
        #expect(queuedAnswer.withLockedValue { $0 } == .failure(.closed))
        #expect(tally.counts.withLockedValue { $0.ran } == [1], "the queued read's body ran after the drain began")
    }
}
