import NIOCore
import RelayCore

/// The NIO decoder: bytes in, ``Frame`` out, one frame per step.
///
/// Besides framing (``FrameParser``) it enforces the rules no frame handler
/// should have to remember:
/// - broker side: the first frame must be HELLO (`hello_required`), and
///   until then frames are capped at ``FrameLayout/preHelloMaxFrameSize``;
/// - client side: the first frame must be WELCOME, ERR or BYE;
/// - HELLO and WELCOME come once;
/// - extension frames (0x80–0xFF) are skipped.
///
/// Use it as `ByteToMessageHandler(RelayFrameDecoder(role: .broker))`.
public struct RelayFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    public let role: WireRole
    /// The largest frame length accepted once the handshake frame has been seen.
    public var maxFrameSize: Int
    /// Internal, not private: ``decodeRepeatedMessage(_:)`` reads both.
    var greeted: Bool
    /// The last MSG's topic and principal, reused while they repeat.
    var strings = MessageStringCache()

    /// - Parameter expectHandshake: false for a decoder that starts past
    ///   HELLO/WELCOME (tests, tools replaying a captured stream).
    public init(role: WireRole, maxFrameSize: Int = FrameLayout.defaultMaxFrameSize, expectHandshake: Bool = true) {
        self.role = role
        self.maxFrameSize = maxFrameSize
        self.greeted = !expectHandshake
    }

    /// The limit for the next frame.
    public var currentMaxFrameSize: Int {
        greeted || role == .client ? maxFrameSize : min(maxFrameSize, FrameLayout.preHelloMaxFrameSize)
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        try decodeFrame(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        if let frame = try decodeFrame(&buffer) { return frame }
        if seenEOF && buffer.readableBytes > 0 {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw WireError(.protocolViolation, "the connection closed inside a frame (\(pending) bytes pending)")
        }
        return nil
    }

    /// The typed-throwing core, also used directly by tests, benchmarks and the fuzzer.
    @inline(__always)
    public mutating func decodeFrame(_ buffer: inout ByteBuffer) throws(WireError) -> Frame? {
        guard let frame = try FrameParser.parse(&buffer, role: role, maxFrameSize: currentMaxFrameSize,
                                                handshakeDone: greeted, strings: &strings) else {
            return nil
        }
        if !greeted {
            switch frame {
            case .hello, .welcome: greeted = true  // the parser admitted only this side's handshake frame
            default: break                         // a client's ERR or BYE instead of WELCOME
            }
        }
        return frame
    }
}

/// The NIO encoder: ``Frame`` in, bytes out. A frame this side may not send
/// is refused here, so a broker bug can never put a client frame on the wire.
/// The broker's MSG fast path skips it and writes ``PreparedMessage`` bytes.
public struct RelayFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Frame

    public let role: WireRole
    /// The largest frame length the peer accepts (its HELLO or WELCOME says so).
    public var maxFrameSize: Int

    public init(role: WireRole, maxFrameSize: Int = Int(FrameLayout.maximumMaxFrameSize)) {
        self.role = role
        self.maxFrameSize = maxFrameSize
    }

    public func encode(data: Frame, out: inout ByteBuffer) throws {
        guard role.maySend(data.type) else {
            throw WireError(.internalError, "\(data.type) may not be sent by the \(role == .broker ? "broker" : "client")")
        }
        try data.encode(into: &out, maxFrameSize: maxFrameSize)
    }
}

/// The names the first users of this module know the codec by.
public typealias FrameDecoder = RelayFrameDecoder
public typealias FrameEncoder = RelayFrameEncoder
