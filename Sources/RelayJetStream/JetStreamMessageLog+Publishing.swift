import Foundation
import RelayStore

/// The append path: a group commit onto JetStream. The writer takes every
/// append queued so far and publishes all their records as one pipelined
/// round (asynchronous publishes on one connection, at most
/// ``JetStreamSettings/publishWindow`` awaiting an ack), then completes each
/// append, in queue order, once each of its records has JetStream's own ack.
/// While a round waits for its acks the next appends queue up, so rounds
/// grow with the load, as LMDB's group commit does (docs/cluster.md,
/// "Performance").
///
/// A record whose publish found no leader or got no ack in time is
/// published again, with the same Nats-Msg-Id (JetStream then answers
/// "duplicate" if the first attempt was stored after all), with backoff,
/// until ``JetStreamSettings/publishTimeout``; then it fails with
/// `unavailable` (storage_unavailable on the wire). A failed record is never
/// acknowledged. The records after it in the round keep their own outcome:
/// those JetStream acked are stored and acknowledged; so a record retried
/// after a leader loss can land after later records of the same round
/// (docs/cluster.md, "What differs from LMDB").
extension JetStreamMessageLog {
    func drainAppends() {
        let jobs = takeQueued()
        guard !jobs.isEmpty else { return }
        guard !isClosed else {
            return jobs.forEach { job in job.completion(job.messages.map { _ in .failure(.closed) }) }
        }
        // One timestamp per append, as the LMDB log gives one per commit.
        var records: [NATSConnection.PublishRecord] = []
        var timestamps: [UInt64] = []
        for job in jobs {
            let timestamp = nextTimestamp()
            for message in job.messages {
                records.append(NATSConnection.PublishRecord(
                    subject: "\(settings.subjectPrefix).\(message.topic.value)",
                    messageID: message.producerKey.map(JetStreamRecord.messageID) ?? nextUnkeyedID(),
                    data: JetStreamRecord.encode(message, timestamp: timestamp)))
                timestamps.append(timestamp)
            }
        }
        let results = publishAll(records, timestamps: timestamps)
        var offset = 0
        for job in jobs {
            job.completion(Array(results[offset..<offset + job.messages.count]))
            offset += job.messages.count
        }
    }

    /// Every record's outcome: rounds of the records still without one,
    /// backing off between rounds, until all have one or the time is up.
    private func publishAll(_ records: [NATSConnection.PublishRecord], timestamps: [UInt64]) -> [Result<AppendReceipt, StoreError>] {
        let deadline = ContinuousClock.now + settings.publishTimeout
        var results = [Result<AppendReceipt, StoreError>?](repeating: nil, count: records.count)
        var pending = Array(records.indices)
        var backoff = settings.retryBackoff
        var rounds = 0
        while !pending.isEmpty {
            rounds += 1
            let remaining = deadline - ContinuousClock.now
            let outcomes: [NATSConnection.PublishOutcome]
            if remaining > .zero {
                // A round ends when no ack came for requestTimeout (the
                // serial path's per-publish wait), or at the deadline.
                outcomes = nats.publishPipelined(pending.map { records[$0] }, window: settings.publishWindow,
                                                 idleMs: max(1, settings.requestTimeout.wholeMilliseconds),
                                                 maxWaitMs: max(1, remaining.wholeMilliseconds))
            } else {
                outcomes = pending.map { _ in .failed(NATSError.timedOut("publish")) }
            }
            var retry: [Int] = []
            var lastError: NATSError?
            for (index, outcome) in zip(pending, outcomes) {
                switch outcome {
                case .acked(let sequence, let duplicate):
                    results[index] = .success(receipt(sequence: sequence, duplicate: duplicate, timestamp: timestamps[index]))
                case .failed(let error) where error.isStreamFull:
                    results[index] = .failure(.storageFull(maxMapSize: configuration.maxMapSize))
                case .failed(let error) where !error.isUnavailable:
                    results[index] = .failure(.unavailable("publish to \(records[index].subject) failed: \(error)"))
                case .failed(let error):
                    retry.append(index)
                    lastError = error
                }
            }
            if retry.count < pending.count { setAvailable(true) }
            guard let lastError, !retry.isEmpty else { break }
            let left = deadline - ContinuousClock.now
            guard left > .zero else {
                setAvailable(false)
                for index in retry {
                    results[index] = .failure(.unavailable(
                        "no JetStream ack for \(records[index].subject) within \(settings.publishTimeout) after \(rounds) attempts: \(lastError)"))
                }
                break
            }
            // Backoff, not a spin: a stream without a leader answers "no
            // responders" at once, for the 3-5 s of an election.
            Thread.sleep(forTimeInterval: min(backoff, left).timeInterval)
            backoff = min(backoff * 2, settings.maxRetryBackoff)
            pending = retry
        }
        return results.map { $0 ?? .failure(.unavailable("publish: no outcome")) }
    }

    private func receipt(sequence: UInt64, duplicate: Bool, timestamp: UInt64) -> AppendReceipt {
        guard duplicate else { return AppendReceipt(sequence: sequence, timestamp: timestamp, duplicate: false) }
        // The original's timestamp is in its record.
        let stored = try? get(sequence, next: false)
        let original = stored.flatMap { JetStreamRecord.timestamp(of: $0.data) }
        return AppendReceipt(sequence: sequence, timestamp: original ?? timestamp, duplicate: true)
    }
}
