import Foundation

/// Work for the writer thread.
enum WriterJob: Sendable {
    case append([NewMessage], @Sendable ([Result<AppendReceipt, StoreError>]) -> Void)
    /// Set (value non-nil: ``DurableCursor/encode(sequence:filter:)``) or delete (nil) a durable cursor.
    case cursor(key: [UInt8], value: [UInt8]?, @Sendable (Result<Void, StoreError>) -> Void)
    /// Run retention and dedup pruning until nothing is left to delete.
    case prune(@Sendable (Result<Int, StoreError>) -> Void)

    var messageCount: Int {
        if case .append(let messages, _) = self { return messages.count }
        return 1
    }

    var payloadBytes: Int {
        guard case .append(let messages, _) = self else { return 0 }
        var total = 0
        for message in messages { total += message.payload.readableBytes }
        return total
    }

    /// Fails the job without running it (store closed).
    func fail(_ error: StoreError) {
        switch self {
        case .append(let messages, let completion):
            completion(Array(repeating: .failure(error), count: messages.count))
        case .cursor(_, _, let completion):
            completion(.failure(error))
        case .prune(let completion):
            completion(.failure(error))
        }
    }
}

/// The hand-off between callers and the writer thread: a mutex-protected
/// array plus a condition to wake the writer. Callers never wait for the
/// writer; they hold the lock only to append to the array.
final class WriterQueue: @unchecked Sendable {
    // All fields below are guarded by `condition`'s mutex.
    private let condition = NSCondition()
    private var pending: [WriterJob] = []
    private var accepting = true

    /// Enqueues `job`; false when the store is closing (the job was not taken).
    func submit(_ job: WriterJob) -> Bool {
        condition.lock()
        guard accepting else {
            condition.unlock()
            return false
        }
        pending.append(job)
        let wasEmpty = pending.count == 1
        condition.unlock()
        // Only the transition to non-empty needs a wake-up: otherwise the
        // writer is busy and will take the whole queue when it finishes.
        if wasEmpty { condition.signal() }
        return true
    }

    /// Takes queued jobs (up to `maxMessages` and `maxBytes`, at least one job), waiting
    /// until `deadline` when empty. Returns nil once closed and drained.
    func take(maxMessages: Int, maxBytes: Int, deadline: Date?) -> [WriterJob]? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty {
            if !accepting { return nil }
            if let deadline {
                if !condition.wait(until: deadline) { return [] }
            } else {
                condition.wait()
            }
        }
        var total = 0
        var bytes = 0
        var cut = 0
        while cut < pending.count {
            total += pending[cut].messageCount
            bytes += pending[cut].payloadBytes
            cut += 1
            if total >= maxMessages || bytes >= maxBytes { break }
        }
        if cut == pending.count {
            // One array per commit, not per message: cheap enough to not recycle.
            let taken = pending
            pending = []
            return taken
        }
        let taken = Array(pending[..<cut])
        pending.removeFirst(cut)
        return taken
    }

    /// Stops accepting jobs and wakes the writer so it drains and exits.
    func close() {
        condition.lock()
        accepting = false
        condition.unlock()
        condition.broadcast()
    }
}
