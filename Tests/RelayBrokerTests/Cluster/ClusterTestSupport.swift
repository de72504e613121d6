import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// What a burst of publishes got back: PUBACKs by publish id, PUBERRs by
/// publish id, and whether the connection closed before every answer came.
struct ClusterPublishOutcome {
    var acked: [UInt64: UInt64] = [:]   // publish id -> sequence
    var refused: [UInt64: String] = [:] // publish id -> error code name
    var closedEarly = false
}

extension FrameClient {
    /// Sends PUBs `ids` on `topic` in one write (payload `p<id>`) and collects
    /// the answer to each, tolerating PUBERR (recorded) and a connection that
    /// dies mid-way (`closedEarly`: the edge was killed). `timeout` bounds the
    /// wait for each answer; it must outlast a stream leader election.
    func publishRecording(_ topic: String, ids: ClosedRange<UInt64>, timeout: TimeAmount = .seconds(20)) async -> ClusterPublishOutcome {
        var outcome = ClusterPublishOutcome()
        var buffer = channel.allocator.buffer(capacity: ids.count * 64)
        do {
            for id in ids {
                try buffer.writeFrame(.publish(Publish(publishID: id, topic: topic, payload: ByteBuffer(string: "p\(id)"))))
            }
            try await channel.writeAndFlush(buffer)
            while outcome.acked.count + outcome.refused.count < ids.count {
                let reply = try await nextReply(timeout: timeout) { frame in
                    if case .message = frame { return false }
                    return true
                }
                switch reply {
                case .publishAck(let ack): outcome.acked[ack.publishID] = ack.sequence
                case .publishError(let error): outcome.refused[error.publishID] = error.errorCode?.name ?? "code \(error.code)"
                default:
                    outcome.closedEarly = true
                    return outcome
                }
            }
        } catch {
            outcome.closedEarly = true
        }
        return outcome
    }

    /// Receives MSG frames until one with sequence >= `last` arrived (or
    /// `timeout` passes between two frames); every message received.
    func messages(through last: UInt64, timeout: TimeAmount = .seconds(20)) async throws -> [Message] {
        var out: [Message] = []
        while out.last.map({ $0.sequence < last }) ?? true {
            guard let frame = try await next(timeout: timeout) else {
                throw BrokerTestError.refused("closed after \(out.count) messages, waiting for sequence \(last)")
            }
            if case .message(let message) = frame { out.append(message) }
        }
        return out
    }
}

/// The exactly-once and order checks every subscriber's view must pass:
/// sequences strictly increasing (in order, no duplicate), every acknowledged
/// message present (by sequence), and each acknowledged payload exactly once.
/// `acked` maps the payload's number (`p<n>`) to its acknowledged sequence.
func checkDelivered(_ messages: [Message], acked: [UInt64: UInt64], subscriber: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    checkDelivered(messages.map { ($0.sequence, payloadString($0)) }, acked: acked, subscriber: subscriber,
                   sourceLocation: sourceLocation)
}

/// The same checks on (sequence, payload text) pairs, whatever client received them.
func checkDelivered(_ messages: [(sequence: UInt64, text: String)], acked: [UInt64: UInt64], subscriber: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    let sequences = messages.map(\.sequence)
    let increasing = zip(sequences, sequences.dropFirst()).allSatisfy { $0 < $1 }
    #expect(increasing, "\(subscriber): sequences not strictly increasing: \(sequences)", sourceLocation: sourceLocation)
    let present = Set(sequences)
    let missing = acked.filter { !present.contains($0.value) }.keys.sorted()
    #expect(missing.isEmpty, "\(subscriber): acknowledged publish ids missing: \(missing)", sourceLocation: sourceLocation)
    var payloadCounts: [String: Int] = [:]
    for message in messages { payloadCounts[message.text, default: 0] += 1 }
    let duplicated = acked.keys.filter { (payloadCounts["p\($0)"] ?? 0) != 1 }.sorted()
        .map { "\($0) (\(payloadCounts["p\($0)"] ?? 0) times)" }
    #expect(duplicated.isEmpty, "\(subscriber): acknowledged publish ids not present exactly once: \(duplicated)",
            sourceLocation: sourceLocation)
}
