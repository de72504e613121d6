/// The frame type byte (Protocol/relay-v1.md §2, "Frame types").
///
/// Values are grouped by concern (0x0_ session, 0x1_ publish, 0x2_
/// subscribe, 0x3_ delivery, 0x4_ liveness, 0x5_ ending, 0x6_ admin) so a hex dump reads
/// at a glance. 0x80–0xFF are extension frames, which receivers skip.
public enum FrameType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 0x01
    case welcome = 0x02
    case publish = 0x10
    case publishAck = 0x11
    case publishError = 0x12
    case subscribe = 0x20
    case subscribeAck = 0x21
    case unsubscribe = 0x22
    case credit = 0x23
    case ack = 0x24
    case message = 0x30
    case ping = 0x40
    case pong = 0x41
    case error = 0x50
    case bye = 0x51
    case admin = 0x60
    case adminReply = 0x61

    /// Types from this value up are extension frames: skipped when unknown.
    public static let firstExtensionType: UInt8 = 0x80

    /// The name the spec and the logs use.
    public var description: String {
        switch self {
        case .hello: return "HELLO"
        case .welcome: return "WELCOME"
        case .publish: return "PUB"
        case .publishAck: return "PUBACK"
        case .publishError: return "PUBERR"
        case .subscribe: return "SUB"
        case .subscribeAck: return "SUBACK"
        case .unsubscribe: return "UNSUB"
        case .credit: return "CREDIT"
        case .ack: return "ACK"
        case .message: return "MSG"
        case .ping: return "PING"
        case .pong: return "PONG"
        case .error: return "ERR"
        case .bye: return "BYE"
        case .admin: return "ADMIN"
        case .adminReply: return "ADMINREPLY"
        }
    }

    /// May a client send this frame?
    public var sentByClient: Bool {
        switch self {
        case .hello, .publish, .subscribe, .unsubscribe, .credit, .ack, .ping, .pong, .bye, .admin: return true
        case .welcome, .publishAck, .publishError, .subscribeAck, .message, .error, .adminReply: return false
        }
    }

    /// May the broker send this frame?
    public var sentByBroker: Bool {
        switch self {
        case .welcome, .publishAck, .publishError, .subscribeAck, .message, .error, .ping, .pong, .bye, .adminReply: return true
        case .hello, .publish, .subscribe, .unsubscribe, .credit, .ack, .admin: return false
        }
    }

    /// The flag bits this type defines; any other bit set is a protocol violation.
    var definedFlags: UInt8 {
        switch self {
        case .publishAck: return PublishAck.duplicateFlag
        case .message: return Message.replayedFlag
        case .adminReply: return AdminReply.moreFlag
        default: return 0
        }
    }
}

/// Which side of the connection a codec runs on. It decides which frame
/// types may arrive (a broker must never accept MSG from a client) and which
/// may be sent.
public enum WireRole: Sendable, Hashable {
    /// The broker: decodes client frames, encodes broker frames.
    case broker
    /// A client: decodes broker frames, encodes client frames.
    case client

    @inline(__always)
    func mayReceive(_ type: FrameType) -> Bool {
        self == .broker ? type.sentByClient : type.sentByBroker
    }

    @inline(__always)
    func maySend(_ type: FrameType) -> Bool {
        self == .broker ? type.sentByBroker : type.sentByClient
    }

    var peerName: String { self == .broker ? "a client" : "the broker" }
}

/// Sizes and limits fixed by the protocol (Protocol/relay-v1.md §2, §3).
/// A "frame size" is the value of the length field: the bytes after it.
public enum FrameLayout {
    /// length:u32 type:u8 flags:u8.
    public static let headerSize = 6
    /// Bytes counted by the length field before the body: type and flags.
    public static let typeAndFlagsSize = 2
    /// What the reference broker and client announce: 1 MiB of payload plus
    /// 64 KiB for everything else in the frame.
    public static let defaultMaxFrameSize = 1_114_112
    /// The smallest limit a peer may announce.
    public static let minimumMaxFrameSize: UInt32 = 1024
    /// The largest limit a peer may announce (64 MiB).
    public static let maximumMaxFrameSize: UInt32 = 67_108_864
    /// The broker's limit until it has read HELLO, so a peer that never
    /// says HELLO cannot make it buffer a large frame.
    public static let preHelloMaxFrameSize = 8192
    /// At most this many entries in a HELLO/WELCOME extension list.
    public static let maxExtensions = 32
    /// HELLO's client name is at most this many bytes.
    public static let maxClientNameBytes = 255
}

/// The protocol versions this implementation speaks.
public enum ProtocolVersion {
    public static let v1: UInt16 = 1
    public static let supported: ClosedRange<UInt16> = 1...1
}
