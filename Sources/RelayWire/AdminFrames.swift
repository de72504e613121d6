import NIOCore
import RelayCore

/// Client → broker: one admin operation (§4.15). `operation` names it
/// (`status`, `connections`, `purge` …); `body` is a UTF-8 JSON object
/// with its arguments (empty: none).
public struct AdminRequest: Sendable, Hashable {
    /// Client-chosen, non-zero; echoed in every ADMINREPLY of this request.
    public var requestID: UInt32
    public var operation: String
    public var body: ByteBuffer

    public init(requestID: UInt32, operation: String, body: ByteBuffer = ByteBuffer()) {
        self.requestID = requestID
        self.operation = operation
        self.body = body
    }
}

/// Broker → client: the answer to an ADMIN (§4.15). `code` 0 with a JSON
/// body is a result; any other code is a refusal with `message` (the
/// session stays open). With ``more`` set, further replies to the same
/// request follow (a backup's data chunks); the last has it clear.
public struct AdminReply: Sendable, Hashable {
    static let moreFlag: UInt8 = 0x01

    public var requestID: UInt32
    /// 0, or a ``RelayErrorCode`` raw value; kept raw so newer codes still decode.
    public var code: UInt16
    public var message: String
    /// A JSON object when `more` is clear; raw data chunks when it is set.
    public var body: ByteBuffer
    public var more: Bool

    public init(requestID: UInt32, code: UInt16 = 0, message: String = "", body: ByteBuffer = ByteBuffer(),
                more: Bool = false) {
        self.requestID = requestID
        self.code = code
        self.message = message
        self.body = body
        self.more = more
    }

    public init(requestID: UInt32, refusal code: RelayErrorCode, message: String) {
        self.init(requestID: requestID, code: code.rawValue, message: message)
    }

    public var errorCode: RelayErrorCode? { code == 0 ? nil : RelayErrorCode(rawValue: code) }
}
