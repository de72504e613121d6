import RelayCore

/// Why bytes could not be decoded into a frame, or a frame not encoded.
///
/// Decoding errors carry a connection-level ``RelayErrorCode`` (the peer
/// broke the framing or the rules of §2–§4, so nothing after it can be
/// trusted): the session sends ERR with ``code`` and ``message``, then
/// closes. The message names the frame and the field, so a client author can
/// find the bug from one log line.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: RelayErrorCode
    public var message: String

    public init(_ code: RelayErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}
