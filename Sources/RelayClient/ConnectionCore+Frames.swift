import NIOCore
import RelayCore
import RelayWire

extension ConnectionCore {
    /// One frame from the broker, on the event loop.
    func received(_ frame: Frame, generation: UInt64) {
        guard phase.isCurrent(generation) else { return }
        switch frame {
        case .welcome(let welcome):
            welcomed(welcome, generation: generation)
        case .publishAck(let ack):
            publishAcknowledged(ack)
        case .publishError(let error):
            publishRefused(error)
        case .subscribeAck(let ack):
            subscribeAnswered(ack)
        case .message(let message):
            delivered(message)
        case .error(let error):
            brokerError(error)
        case .ping(let token):
            write(.pong(token: token))
        case .pong:
            break
        case .bye(let bye):
            let reason = bye.errorCode.map { "\($0.name): \($0.explanation)" } ?? "code \(bye.code)"
            noteError(.connectionLost(bye.code == 0
                ? "the broker at \(currentServer) ended the connection"
                : "the broker at \(currentServer) ended the connection (\(reason))"))
            currentChannel?.close(promise: nil)
        case .adminReply:
            break  // admin calls go through AdminConnection, which this connection never sends
        case .hello, .publish, .subscribe, .unsubscribe, .credit, .ack, .admin:
            // The decoder refuses frames a broker may not send; nothing reaches here.
            noteError(.connectionLost("the broker sent a \(frame.type) frame, which only clients send"))
            currentChannel?.close(promise: nil)
        }
    }

    /// A PUBACK the decoder took straight from the bytes (no ``Frame`` around it).
    func received(_ ack: PublishAck, generation: UInt64) {
        guard phase.isCurrent(generation) else { return }
        publishAcknowledged(ack)
    }

    /// A MSG the decoder took straight from the bytes (no ``Frame`` around it).
    func received(_ message: consuming Message, generation: UInt64) {
        guard phase.isCurrent(generation) else { return }
        delivered(consume message)
    }

    /// After a burst of reads: send what the answers freed up, in one flush.
    func readComplete(generation: UInt64) {
        guard let link = phase.link, link.generation == generation else { return }
        keepaliveHeard = true
        pumpPublishes()
        flushOutbound()
    }

    private func brokerError(_ error: ErrorFrame) {
        if error.subscriptionID != 0 {
            subscriptionEnded(error.subscriptionID, error: .broker(rawCode: error.code, message: error.message,
                                                                   operation: "subscription"))
            return
        }
        noteError(.broker(rawCode: error.code, message: error.message))
        if error.closesConnection {
            phase.liveChannel?.close(promise: nil)
        }
    }
}
