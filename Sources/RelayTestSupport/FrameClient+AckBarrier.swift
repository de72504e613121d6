import NIOCore
import RelayWire

extension FrameClient {
    /// Sends ACK `sequence` on `subscriptionID` and a PUB to `barrierTopic` in one
    /// write, and waits for that PUB's PUBACK. The broker commits an ACK no later
    /// than a PUB read after it (docs/storage.md), so the PUBACK is the event that
    /// says the durable cursor is on disk: no sleep is needed to wait for the
    /// group commit. Frames read on the way stay queued for `next`.
    public func acknowledgeDurably(subscriptionID: UInt32, sequence: UInt64, barrierTopic: String = "barrier.ack",
                                   publishID: UInt64 = UInt64.max - 1) async throws {
        try await send(.ack(Ack(subscriptionID: subscriptionID, sequence: sequence)),
                       .publish(Publish(publishID: publishID, topic: barrierTopic, payload: ByteBuffer(string: "ack \(sequence)"))))
        let reply = try await nextReply { frame in
            switch frame {
            case .publishAck(let ack): return ack.publishID == publishID
            case .publishError(let error): return error.publishID == publishID
            default: return false
            }
        }
        guard case .publishAck = reply else {
            throw FrameClientError.unexpected("the barrier PUB after ACK \(sequence) was not acknowledged: \(String(describing: reply))")
        }
    }
}
