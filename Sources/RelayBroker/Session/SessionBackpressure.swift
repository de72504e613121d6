#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import RelayCore
import RelayTLS

/// Output backpressure and the end of a session.
///
/// Every frame the session answers with (PONG, PUBACK, PUBERR, SUBACK, ERR,
/// MSG) ends up in the channel's outbound queue. When a peer stops reading,
/// that queue passes the high water mark (``BrokerServer``), the channel
/// turns unwritable and the session stops reading from it: no request is
/// read that could add more answers. MSG delivery already waits for
/// writability (``SessionEnvironment/canDeliver``). A peer that stays
/// unwritable for `limits.write_stall_timeout` is closed with
/// `write_stalled`, so a client that never reads holds at most about the
/// high water mark plus one read batch of memory, and only for that long.
extension SessionHandler {
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        machine.writabilityChanged(isWritable: writable)
        if writable {
            stallTimer?.cancel()
            stallTimer = nil
            readIfRequested()
            schedulePump()
        } else {
            startStallTimer(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func startStallTimer(context: ChannelHandlerContext) {
        guard stallTimer == nil else { return }
        let timeout = TimeAmount.nanoseconds(broker.limits.writeStallTimeoutNanos)
        let session = NIOLoopBound(WeakSession(self), eventLoop: context.eventLoop)
        stallTimer = context.eventLoop.scheduleTask(in: timeout) {
            guard let handler = session.value.handler, handler.machine.writeBlocked else { return }
            handler.stallTimer = nil
            handler.terminate(.writeStalled, "the connection read none of the broker's output for \(timeout.nanoseconds / 1_000_000) ms (limits.write_stall_timeout)")
        }
    }

    /// The `session_closed` audit event and metric, once per session that
    /// got past HELLO: why it ended and how long it lasted.
    func recordSessionClosed() {
        guard let opened else {
            // Verified but never a session: refused identity, broker full, no HELLO.
            if handshakeCompleted { logDenied(reason: machine.closeReason ?? "closed_before_hello") }
            return
        }
        self.opened = nil
        let reason = machine.closeReason ?? "peer_closed"
        broker.metrics.sessionClosed(reason: reason).increment()
        logClosed(principal: opened.principal, reason: reason,
                  durationMilliseconds: Int((NIODeadline.now() - opened.since).nanoseconds / 1_000_000))
        broker.audit?.record("session_closed", ["principal": opened.principal, "serial": opened.serial,
                                                "reason": reason,
                                                "duration_ms": Int((NIODeadline.now() - opened.since).nanoseconds / 1_000_000)])
    }

    static func reasonLabel(_ error: TLSError) -> String { HandshakeFailureReason.name(error) }

    /// The close reason of a socket error: a killed client's kernel answers
    /// with a TCP reset instead of a FIN when relayd's last bytes were still
    /// unread, so its session ends with `connection_reset`, not EOF.
    static func connectionErrorReason(_ error: any Error) -> String {
        if let io = error as? IOError, io.errnoCode == ECONNRESET || io.errnoCode == EPIPE { return "connection_reset" }
        return "connection_error"
    }

    /// The close reason of a TLS error after the handshake completed.
    static func sessionCloseReason(_ error: TLSError) -> String {
        switch error {
        case .unexpectedEOF: return "closed_without_close_notify"
        default: return "tls_\(reasonLabel(error))"
        }
    }
}
