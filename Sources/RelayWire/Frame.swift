import NIOCore
import RelayCore

/// One protocol frame (Protocol/relay-v1.md §4). Payloads and header blocks
/// are `ByteBuffer` slices of the receive buffer: decoding never copies them.
public enum Frame: Sendable, Hashable {
    case hello(Hello)
    case welcome(Welcome)
    case publish(Publish)
    case publishAck(PublishAck)
    case publishError(PublishError)
    case subscribe(Subscribe)
    case subscribeAck(SubscribeAck)
    case unsubscribe(subscriptionID: UInt32)
    case credit(Credit)
    case ack(Ack)
    case message(Message)
    case ping(token: UInt64)
    case pong(token: UInt64)
    case error(ErrorFrame)
    case bye(Bye)
    case admin(AdminRequest)
    case adminReply(AdminReply)

    public var type: FrameType {
        switch self {
        case .hello: return .hello
        case .welcome: return .welcome
        case .publish: return .publish
        case .publishAck: return .publishAck
        case .publishError: return .publishError
        case .subscribe: return .subscribe
        case .subscribeAck: return .subscribeAck
        case .unsubscribe: return .unsubscribe
        case .credit: return .credit
        case .ack: return .ack
        case .message: return .message
        case .ping: return .ping
        case .pong: return .pong
        case .error: return .error
        case .bye: return .bye
        case .admin: return .admin
        case .adminReply: return .adminReply
        }
    }
}

/// An entry of a HELLO/WELCOME extension list. Receivers ignore types they
/// do not know; v1 defines none (0xF000–0xFFFF are for experiments).
public struct WireExtension: Sendable, Hashable {
    public var type: UInt16
    public var value: ByteBuffer

    public init(type: UInt16, value: ByteBuffer = ByteBuffer()) {
        self.type = type
        self.value = value
    }
}

/// Client → broker, the first frame after the TLS handshake (§4.1).
public struct Hello: Sendable, Hashable {
    public var minVersion: UInt16
    public var maxVersion: UInt16
    /// The largest frame length the client accepts.
    public var maxFrameSize: UInt32
    /// The producer session for publish deduplication; ``ProducerSessionID/none`` for none.
    public var sessionID: ProducerSessionID
    /// Free text for logs (program and version), at most 255 bytes; no effect on identity.
    public var clientName: String
    public var extensions: [WireExtension]

    public init(minVersion: UInt16 = ProtocolVersion.v1, maxVersion: UInt16 = ProtocolVersion.v1,
                maxFrameSize: UInt32 = UInt32(FrameLayout.defaultMaxFrameSize),
                sessionID: ProducerSessionID = .none, clientName: String = "", extensions: [WireExtension] = []) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.maxFrameSize = maxFrameSize
        self.sessionID = sessionID
        self.clientName = clientName
        self.extensions = extensions
    }
}

/// Broker → client, the answer to an accepted HELLO (§4.2): the chosen
/// version, the limits the broker enforces, and who the broker says the
/// client is (from its verified certificate).
public struct Welcome: Sendable, Hashable {
    public var version: UInt16
    /// The largest frame length the broker accepts.
    public var maxFrameSize: UInt32
    public var maxPayload: UInt32
    public var maxHeaders: UInt16
    /// Key plus value bytes of one header block.
    public var maxHeaderBytes: UInt32
    public var maxInFlight: UInt32
    public var maxSubscriptions: UInt32
    /// How long stored publish ids are remembered for deduplication, in ns; 0: no dedup.
    public var dedupWindow: UInt64
    /// The name stamped on this client's messages.
    public var principal: String
    /// The certificate subject, RFC 4514.
    public var subject: String
    /// SHA-256 of the client certificate.
    public var fingerprint: CertificateFingerprint
    /// The certificate's SPIFFE ID URI, or empty.
    public var spiffeID: String
    public var extensions: [WireExtension]

    public init(version: UInt16 = ProtocolVersion.v1, maxFrameSize: UInt32 = UInt32(FrameLayout.defaultMaxFrameSize),
                maxPayload: UInt32, maxHeaders: UInt16, maxHeaderBytes: UInt32 = 16384, maxInFlight: UInt32,
                maxSubscriptions: UInt32, dedupWindow: UInt64, principal: String, subject: String,
                fingerprint: CertificateFingerprint, spiffeID: String = "", extensions: [WireExtension] = []) {
        self.version = version
        self.maxFrameSize = maxFrameSize
        self.maxPayload = maxPayload
        self.maxHeaders = maxHeaders
        self.maxHeaderBytes = maxHeaderBytes
        self.maxInFlight = maxInFlight
        self.maxSubscriptions = maxSubscriptions
        self.dedupWindow = dedupWindow
        self.principal = principal
        self.subject = subject
        self.fingerprint = fingerprint
        self.spiffeID = spiffeID
        self.extensions = extensions
    }
}

/// Broker → client (§4.13). Subscription id 0: about the connection (a code
/// below 0x0100 means the broker closes it). Otherwise that subscription
/// has ended with an operation-level code.
public struct ErrorFrame: Sendable, Hashable {
    /// A ``RelayErrorCode`` raw value; kept raw so a newer broker's codes still decode.
    public var code: UInt16
    public var subscriptionID: UInt32
    public var message: String

    public init(code: RelayErrorCode, subscriptionID: UInt32 = 0, message: String) {
        self.init(rawCode: code.rawValue, subscriptionID: subscriptionID, message: message)
    }

    public init(rawCode: UInt16, subscriptionID: UInt32 = 0, message: String) {
        self.code = rawCode
        self.subscriptionID = subscriptionID
        self.message = message
    }

    public var errorCode: RelayErrorCode? { RelayErrorCode(rawValue: code) }
    /// Unknown codes below 0x0100 close too (§6).
    public var closesConnection: Bool { code < 0x0100 }
}

/// Both directions (§4.14): a clean goodbye; code 0 is a normal close.
public struct Bye: Sendable, Hashable {
    public var code: UInt16
    public var message: String

    public static let normal = Bye(code: 0, message: "")

    public init(code: UInt16, message: String) {
        self.code = code
        self.message = message
    }

    public init(code: RelayErrorCode, message: String) {
        self.init(code: code.rawValue, message: message)
    }

    public var errorCode: RelayErrorCode? { RelayErrorCode(rawValue: code) }
}
