import CNATS

/// A failed nats.c call: the status, nats.c's own text for it, and the
/// JetStream API error code when the server sent one (0 otherwise).
public struct NATSError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let status: Int32
    public let text: String
    public let jsCode: Int32

    /// No stream leader, no responders, or no answer in time: a cluster
    /// without quorum, a leader election, or no connection at all.
    var isUnavailable: Bool {
        let s = natsStatus(rawValue: UInt32(bitPattern: status))
        return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED
            || s == NATS_CONNECTION_DISCONNECTED || s == NATS_NO_SERVER || s == NATS_NOT_YET_CONNECTED
            || s == NATS_STALE_CONNECTION || jsCode == Int32(JSClusterNoPeersErr.rawValue)
            || jsCode == Int32(JSStreamOfflineErr.rawValue) || jsCode == Int32(JSClusterNotAvailErr.rawValue)
            || jsCode == Int32(JSInsufficientResourcesErr.rawValue)
    }

    var isNotFound: Bool { natsStatus(rawValue: UInt32(bitPattern: status)) == NATS_NOT_FOUND }
    /// A stream at its max_bytes with discard-new refuses with "maximum bytes exceeded" (error 10077).
    var isStreamFull: Bool { text.contains("maximum bytes exceeded") || text.contains("maximum messages exceeded") }

    init(_ operation: String, _ status: natsStatus, jsCode: jsErrCode = jsErrCode(0)) {
        self.operation = operation
        self.status = Int32(bitPattern: status.rawValue)
        // nats_GetLastError: a thread-local string owned by nats.c, valid
        // until the next nats.c call on this thread; copied at once.
        var last = NATS_OK
        let detail = nats_GetLastError(&last).map { String(cString: $0) }
        self.text = Self.reason(lastError: detail, status: status)
        self.jsCode = Int32(bitPattern: jsCode.rawValue)
    }

    /// nats.c's text for the failure: its last error when it has one, else
    /// the status's own name. nats.c records some failures (a JetStream
    /// request that timed out) with an empty text, which once reached an
    /// operator as "create stream RELAY: " with no reason at all.
    static func reason(lastError: String?, status: natsStatus) -> String {
        if let lastError, !lastError.allSatisfy(\.isWhitespace) { return lastError }
        // natsStatus_GetText: a static string.
        return String(cString: natsStatus_GetText(status))
    }

    /// An error reported for one message of a pipelined round, with the text
    /// copied from its ack handler.
    init(_ operation: String, _ status: natsStatus, jsCode: jsErrCode, text: String) {
        self.operation = operation
        self.status = Int32(bitPattern: status.rawValue)
        self.text = Self.reason(lastError: text, status: status)
        self.jsCode = Int32(bitPattern: jsCode.rawValue)
    }

    /// The caller's own deadline passed before a request could be made.
    static func timedOut(_ operation: String) -> NATSError { NATSError(operation, NATS_TIMEOUT) }

    public var description: String {
        "\(operation): \(text)" + (jsCode != 0 ? " (JetStream error \(jsCode))" : "")
    }
}
