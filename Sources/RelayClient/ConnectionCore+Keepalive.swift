import NIOCore
import RelayWire

/// The client's keep-alive (``RelayClientConfiguration/keepaliveInterval``):
/// a connection that stays silent — a network partition, a half-open TCP
/// connection, a broker host that vanished — never sends the FIN or RST that
/// would end it, so without this check the client would wait for ever with
/// its publishes unanswered.
extension ConnectionCore {
    /// Starts the keep-alive of the connection `generation`, just welcomed.
    /// Every interval: something read since the last tick, all is well; the
    /// first silent tick sends PING; the second gives the connection up.
    func startKeepalive(generation: UInt64) {
        stopKeepalive()
        keepaliveHeard = false
        keepaliveSilentTicks = 0
        let interval = configuration.keepaliveInterval
        guard interval > .zero else { return }
        keepaliveTask = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] task in
            keepaliveTick(generation: generation, task: task)
        }
    }

    func stopKeepalive() {
        keepaliveTask?.cancel()
        keepaliveTask = nil
    }

    private func keepaliveTick(generation: UInt64, task: RepeatedTask) {
        guard let link = phase.link, link.generation == generation else {
            task.cancel()
            return
        }
        if keepaliveHeard {
            keepaliveHeard = false
            keepaliveSilentTicks = 0
            return
        }
        keepaliveSilentTicks += 1
        if keepaliveSilentTicks == 1 {
            keepaliveToken &+= 1
            write(.ping(token: keepaliveToken))
            flushOutbound()
            return
        }
        let silence = 2 * configuration.keepaliveInterval.nanoseconds / 1_000_000
        noteError(.connectionLost("the broker at \(currentServer) sent nothing for at least \(silence) ms, not even a PONG "
            + "to the keep-alive PING; the network path or the broker is gone "
            + "(RelayClientConfiguration.keepaliveInterval)"))
        task.cancel()
        link.channel.close(promise: nil)
    }
}
