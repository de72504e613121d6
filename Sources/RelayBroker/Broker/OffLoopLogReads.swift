import Dispatch
import NIOConcurrencyHelpers
import NIOPosix
import RelayStore

/// Runs the reads of a log whose reads wait on a service (a SUB's look-ups,
/// of which a durable cursor read retries for up to 8 s while a JetStream
/// bucket elects a leader; a replay's batches) on threads of their own.
/// Each holds only its own session or subscription; the event loops go on
/// serving every other one. The broker's shutdown waits for those still
/// running (``drain()``) before it closes the log they read.
///
/// A pool of `[storage.jetstream] read_threads` threads, started by the
/// first read (a broker on a log read inline starts none). Not
/// dispatch's: its pool starts a few threads and adds about one a second
/// while they block, so a read asked for behind reads waiting out an
/// election waited seconds for a thread; and it grows with no bound of
/// ours. Here up to `threads` reads run at once, each starting at once, and
/// the rest wait their turn in the order asked.
final class OffLoopLogReads: Sendable {
    private struct State {
        var closed = false
        var pool: NIOThreadPool?
        var running = 0
        var waiting = 0
    }

    private let threads: Int
    /// Told the running and waiting counts after each change, under the lock (so in order).
    private let observe: @Sendable (_ running: Int, _ waiting: Int) -> Void
    private let state = NIOLockedValueBox(State())
    /// Every read asked for and not yet answered, queued or running.
    private let unanswered = DispatchGroup()

    /// `threads`: at least 1 (the config's `read_threads` is 1 to 256).
    /// `observe`: the counts for relay_storage_reads_running and _waiting.
    init(threads: Int, observe: @escaping @Sendable (_ running: Int, _ waiting: Int) -> Void = { _, _ in }) {
        self.threads = max(1, threads)
        self.observe = observe
    }

    /// Whether ``drain()`` began: reads asked for from now on are refused.
    var refusesNewReads: Bool { state.withLockedValue { $0.closed } }

    /// Runs `read` and hands its answer to `done`, both on a thread of the
    /// pool; after ``drain()`` began, `done` gets ``StoreError/closed`` at once,
    /// and a read still queued then gets it instead of running.
    func run<Answer: Sendable>(_ read: @escaping @Sendable () throws(StoreError) -> Answer,
                               then done: @escaping @Sendable (Result<Answer, StoreError>) -> Void) {
        // Entered under the lock, so drain() either sees this read in the group or it is refused.
        let pool: NIOThreadPool? = state.withLockedValue { state in
            guard !state.closed else { return nil }
            unanswered.enter()
            state.waiting += 1
            observe(state.running, state.waiting)
            if let pool = state.pool { return pool }
            let pool = NIOThreadPool(numberOfThreads: threads)
            pool.start()
            state.pool = pool
            return pool
        }
        guard let pool else { return done(.failure(.closed)) }
        pool.submit { [state, unanswered, observe] _ in
            defer { unanswered.leave() }
            // Queued when the drain began: the log is about to close, and the
            // drain waits only for the reads already running.
            let closed = state.withLockedValue { state in
                state.waiting -= 1
                if !state.closed { state.running += 1 }
                observe(state.running, state.waiting)
                return state.closed
            }
            if closed { return done(.failure(.closed)) }
            let answer: Result<Answer, StoreError>
            do throws(StoreError) { answer = .success(try read()) } catch { answer = .failure(error) }
            state.withLockedValue { state in
                state.running -= 1
                observe(state.running, state.waiting)
            }
            done(answer)
        }
    }

    /// Refuses new reads, answers those still queued ``StoreError/closed``,
    /// and returns once those running have ended and the pool's threads stopped.
    func drain() async {
        let pool = state.withLockedValue { state in
            state.closed = true
            return state.pool
        }
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            unanswered.notify(queue: .global()) { finished.resume() }
        }
        // Every submitted item has run, so nothing is left for the shutdown to cancel.
        try? await pool?.shutdownGracefully()
    }
}
