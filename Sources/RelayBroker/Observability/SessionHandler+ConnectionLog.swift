import Logging
import NIOCore

/// What a session remembers for its connection log lines.
struct ConnectionLogState {
    /// The peer as `127.0.0.1:58372` / `[::1]:58372`, read at accept (a
    /// closed channel no longer reports it).
    var peer = "unknown"
    /// The verified certificate's subject, once the handshake completed.
    var subject: String?
    /// "TLSv1.3" or "TLSv1.2".
    var tls: String?
    /// A denied or closed line was written (tear-down runs more than once).
    var ended = false
}

/// The operator's connection log (`[log] connections`, on by default):
/// one `info` line when a session is accepted, one when it closes (reason
/// and duration) and one when a connection is denied (handshake refused,
/// identity refused, broker full, no HELLO), each with the peer address.
extension SessionHandler {
    private var logsConnections: Bool { broker.configuration.log.connections }

    func noteAccept(_ address: SocketAddress?) {
        connectionLog.peer = address.map(PeerAddress.describe) ?? "unknown"
    }

    func logAccepted(principal: String, serial: String) {
        guard logsConnections else { return }
        logger.info("connection accepted", metadata: ["peer": "\(connectionLog.peer)", "principal": "\(principal)",
                                                      "subject": "\(connectionLog.subject ?? "")", "serial": "\(serial)",
                                                      "tls": "\(connectionLog.tls ?? "")"])
    }

    func logClosed(principal: String, reason: String, durationMilliseconds: Int) {
        guard !connectionLog.ended else { return }
        connectionLog.ended = true
        guard logsConnections else { return }
        logger.info("connection closed", metadata: ["peer": "\(connectionLog.peer)", "principal": "\(principal)",
                                                    "reason": "\(reason)", "duration_ms": "\(durationMilliseconds)"])
    }

    /// A connection that never became a session. `error` is the full text
    /// (e.g. the X509 error), `reason` its name.
    func logDenied(reason: String, error: String? = nil) {
        guard !connectionLog.ended else { return }
        connectionLog.ended = true
        guard logsConnections else { return }
        var metadata: Logger.Metadata = ["peer": "\(connectionLog.peer)", "reason": "\(reason)"]
        if let subject = connectionLog.subject { metadata["subject"] = "\(subject)" }
        if let error { metadata["error"] = "\(error)" }
        logger.info("connection denied", metadata: metadata)
    }
}

/// Socket addresses as operators write them: `127.0.0.1:58372`,
/// `[::1]:58372`, not NIO's `[IPv4]127.0.0.1/127.0.0.1:58372`.
enum PeerAddress {
    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        if case .v6 = address { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}
