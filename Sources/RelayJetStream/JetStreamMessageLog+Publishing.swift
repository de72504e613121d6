import Foundation
import RelayStore

/// The append path: a group commit onto JetStream, pipelined across rounds.
/// The writer takes every append queued so far and sends all their records
/// as one round (asynchronous publishes on one connection, at most
/// ``JetStreamSettings/publishWindow`` awaiting an ack over all rounds), then
/// hands the round to the ack queue and goes straight back for the next
/// appends. The ack queue waits for each round's acks, in send order, and
/// completes its appends, in queue order, once each of their records has
/// JetStream's own ack. So the next round is on the wire while the previous
/// ones await their acks, and the publishers' windows refill continuously
/// (the serial rounds of wave 5 left the window empty for one round trip per
/// round: docs/performance-history.md, "Cluster edge history", its first section).
///
/// A record whose publish found no leader or got no ack in time is
/// published again, with the same Nats-Msg-Id (JetStream then answers
/// "duplicate" if the first attempt was stored after all), with backoff,
/// until ``JetStreamSettings/publishTimeout``; then it fails with
/// `unavailable` (storage_unavailable on the wire). A failed record is never
/// acknowledged. The records after it keep their own outcome: those
/// JetStream acked are stored and acknowledged; so a record retried after a
/// leader loss can land after later records (docs/cluster.md, "What differs
/// from LMDB").
extension JetStreamMessageLog {
    /// On the writer queue.
    func drainAppends() {
        let jobs = takeQueued()
        guard !jobs.isEmpty else { return }
        guard !isClosed else {
            return jobs.forEach { job in job.completion(job.messages.map { _ in .failure(.closed) }) }
        }
        let deadline = ContinuousClock.now + settings.publishTimeout
        // One timestamp per append, as the LMDB log gives one per commit.
        var records: [NATSConnection.PublishRecord] = []
        var timestamps: [UInt64] = []
        let prefix = settings.subjectPrefix + "."
        let format = settings.recordFormat
        for job in jobs {
            let timestamp = nextTimestamp()
            for message in job.messages {
                records.append(NATSConnection.PublishRecord(
                    subject: prefix + message.topic.value,
                    messageID: message.producerKey.map { JetStreamRecord.messageID($0, format: format) } ?? nextUnkeyedID(),
                    data: JetStreamRecord.encode(message, timestamp: timestamp, format: format)))
                timestamps.append(timestamp)
            }
        }
        let round = nats.sendRound(records, window: settings.publishWindow, idleMs: idleMs,
                                   maxWaitMs: max(1, (deadline - ContinuousClock.now).wholeMilliseconds))
        let stamps = timestamps
        acks.async {
            let results = self.collect(round, timestamps: stamps, deadline: deadline)
            var offset = 0
            for job in jobs {
                job.completion(Array(results[offset..<offset + job.messages.count]))
                offset += job.messages.count
            }
        }
    }

    /// A round ends when no ack came for requestTimeout (the serial path's
    /// per-publish wait), or at the deadline.
    private var idleMs: Int64 { max(1, settings.requestTimeout.wholeMilliseconds) }

    /// Every record's outcome (on the ack queue): the round's acks, then
    /// rounds of the records still without one, backing off between rounds,
    /// until all have one or the time is up.
    private func collect(_ first: PublishRound, timestamps: [UInt64], deadline: ContinuousClock.Instant) -> [Result<AppendReceipt, StoreError>] {
        let records = first.records
        var results = [Result<AppendReceipt, StoreError>?](repeating: nil, count: records.count)
        var pending = Array(records.indices)
        var backoff = settings.retryBackoff
        var rounds = 0
        var round: PublishRound? = first
        while !pending.isEmpty {
            rounds += 1
            let remaining = deadline - ContinuousClock.now
            let outcomes: [NATSConnection.PublishOutcome]
            if let sent = round {
                outcomes = nats.awaitRound(sent, idleMs: idleMs, maxWaitMs: max(1, remaining.wholeMilliseconds))
                round = nil
            } else if remaining > .zero {
                // A retry: sent from this queue while the writer may send later
                // rounds (retried records may land after them, as documented).
                outcomes = nats.publishPipelined(pending.map { records[$0] }, window: settings.publishWindow,
                                                 idleMs: idleMs, maxWaitMs: max(1, remaining.wholeMilliseconds))
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
