import RelayCore
import RelayStore

/// A replay read to make off the event loop: a log whose reads wait on a
/// service (JetStream: each read is NATS round trips, about 26 ms for a
/// turn's 1,024 messages) would otherwise hold every session on the loop.
struct ReplayRead: Sendable, Equatable {
    /// Matches the answer to the read: a new one per read, per session.
    var token: UInt64
    var from: UInt64
    var filter: TopicFilter
    var maxMessages: Int
    var maxBytes: Int
}

/// A replay read's answer that the delivery turns have not sent yet.
struct ReadAhead {
    var batch: ReadBatch
    /// Where the read started: a batch whose `next` is not past it found nothing new.
    var from: UInt64
    /// The first message not yet stepped over.
    var index = 0
}

/// What a turn did with a subscription's read-ahead.
enum ReadAheadStep {
    /// A read is in flight (or was just asked for): nothing to do until it answers.
    case waiting
    /// The whole batch was stepped over and the replay moved on: read again.
    case advanced
    /// The batch moved nothing forward: the log has nothing past it yet.
    case stalled
    /// Out of credit, budget or room at the peer: the rest stays for a later turn.
    case paused
    /// This message does not fit the peer's frame limit (§4.11).
    case tooLarge(UInt64)
}

extension SessionStateMachine {
    /// One step of a replay on a log whose reads wait on a service: sends
    /// what the subscription's read-ahead holds, as a read inside the turn
    /// would, or asks for the next read and leaves the subscription out of
    /// the turns until it is answered (``replayRead(_:_:_:_:)``). The messages
    /// go through the same ``SubscriptionDelivery/replayStep(sequence:timestamp:)``
    /// as a read's records, so one already sent or passed over (below
    /// `nextSequence`) is never sent again, whatever the batch holds.
    func replayFromReadAhead<Env: SessionEnvironment>(_ entry: SubscriptionEntry, in session: ActiveSession,
                                                      written: inout Int, budget: Int, _ env: Env) -> ReadAheadStep {
        let sub = entry.delivery
        guard entry.awaitingRead == nil else { return .waiting }
        // A batch wholly behind the replay (left over when live delivery
        // overtook it, say) is dropped and read anew, not stepped over as if
        // the log had nothing more. One that found nothing is stepped: a stall.
        if let ahead = entry.readAhead, ahead.batch.next > ahead.from, ahead.batch.next <= sub.nextSequence {
            entry.readAhead = nil
        }
        guard var ahead = entry.readAhead else {
            session.lastReplayRead &+= 1
            entry.awaitingRead = session.lastReplayRead
            env.run(.readReplay(subscriptionID: sub.id, ReplayRead(
                token: session.lastReplayRead, from: sub.nextSequence, filter: sub.filter,
                maxMessages: Int(min(sub.credit, 1_024)), maxBytes: Self.replayReadBytes)))
            return .waiting
        }
        defer { entry.readAhead = ahead.index < ahead.batch.messages.count ? ahead : nil }
        while ahead.index < ahead.batch.messages.count {
            guard written < budget, env.canDeliver, !env.outboundFull else { return .paused }
            let message = ahead.batch.messages[ahead.index]
            switch sub.replayStep(sequence: message.sequence, timestamp: message.timestamp) {
            case .stop:
                return .paused  // out of credit
            case .passOver:
                ahead.index += 1
            case .deliver:
                guard env.deliverReplayed(message, subscriptionID: sub.id) else { return .tooLarge(message.sequence) }
                sub.sentReplayed()
                written += 1
                ahead.index += 1
            }
        }
        sub.replayScanned(to: ahead.batch.next)
        return ahead.batch.next > ahead.from ? .advanced : .stalled
    }

    /// A replay read made off the loop was answered. The subscription it
    /// was for must still be open and waiting for this very read (`token`):
    /// after an UNSUB the id may name a new subscription, which must not be
    /// sent the old one's messages. A failed read ends the subscription,
    /// as an inline one does.
    mutating func replayRead<Env: SessionEnvironment>(_ id: UInt32, _ read: ReplayRead, _ result: Result<ReadBatch, StoreError>,
                                                      _ env: Env) {
        let (token, from) = (read.token, read.from)
        guard let session, let entry = session.subscriptions[id], entry.awaitingRead == token else { return }
        entry.awaitingRead = nil
        switch result {
        case .success(let batch):
            entry.readAhead = ReadAhead(batch: batch, from: from)
            session.subscriptions.markReady(entry)
            pump(env)
        case .failure(let error):
            endSubscription(id, in: session, code: error.relayErrorCode, message: "replay failed: \(error)", env)
        }
    }
}
