import Dispatch
import NIOConcurrencyHelpers
import RelayStore

/// Runs the reads of a log whose reads wait on a service (a SUB's look-ups,
/// of which a durable cursor read retries for up to 8 s while a JetStream
/// bucket elects a leader; a replay's batches) on threads of their own.
/// Each holds only its own session or subscription; the event loops go on
/// serving every other one. The broker's shutdown waits for those still
/// running (``drain()``) before it closes the log they read.
final class OffLoopLogReads: Sendable {
    private let queue = DispatchQueue(label: "relayd.log-reads", attributes: .concurrent)
    private let running = DispatchGroup()
    private let closed = NIOLockedValueBox(false)

    /// Runs `read` and hands its answer to `done`, both on a thread of the
    /// queue; after ``drain()`` began, `done` gets ``StoreError/closed`` at once.
    func run<Answer: Sendable>(_ read: @escaping @Sendable () throws(StoreError) -> Answer,
                               then done: @escaping @Sendable (Result<Answer, StoreError>) -> Void) {
        // Entered under the lock, so drain() either sees this read in the group or it is refused.
        let admitted = closed.withLockedValue { closed in
            if !closed { running.enter() }
            return !closed
        }
        guard admitted else { return done(.failure(.closed)) }
        queue.async { [running] in
            defer { running.leave() }
            let answer: Result<Answer, StoreError>
            do throws(StoreError) { answer = .success(try read()) } catch { answer = .failure(error) }
            done(answer)
        }
    }

    /// Refuses new reads and returns once those running have ended.
    func drain() async {
        closed.withLockedValue { $0 = true }
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            running.notify(queue: .global()) { finished.resume() }
        }
    }
}
