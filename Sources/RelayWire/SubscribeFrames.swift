import RelayCore

/// ``StartPosition`` (RelayCore) as SUB carries it.
extension StartPosition {
    /// From the wire; throws `protocol_violation` for an undefined kind or a
    /// value where the kind takes none.
    static func decode(kind: UInt8, value: UInt64) throws(WireError) -> StartPosition {
        switch kind {
        case 0, 1:
            guard value == 0 else {
                throw WireError(.protocolViolation, "SUB start kind \(kind) (\(kind == 0 ? "latest" : "earliest")) "
                    + "takes no value, but the value is \(value)")
            }
            return kind == 0 ? .latest : .earliest
        case 2: return .sequence(value)
        case 3: return .time(value)
        case 4: return .last(value)
        default:
            throw WireError(.protocolViolation,
                            "SUB start kind \(kind) is not defined (0 latest, 1 earliest, 2 sequence, 3 time, 4 last)")
        }
    }
}

/// How the client acknowledges (§4.6).
public enum AckMode: UInt8, Sendable, Hashable, CaseIterable {
    /// No ACK; a durable cursor advances as messages are sent.
    case none = 0
    /// ACK(sequence) covers everything up to it; a durable cursor advances only on ACK.
    case cumulative = 1
}

/// Client → broker: open a subscription (§4.6).
public struct Subscribe: Sendable, Hashable {
    /// Client-chosen, ≥ 1, unique among this connection's open subscriptions.
    public var subscriptionID: UInt32
    /// Not yet checked against the filter grammar (an operation-level error).
    public var filter: String
    public var start: StartPosition
    /// Empty for an ephemeral subscription; else the durable cursor's name.
    public var durableName: String
    /// MSG frames the broker may send before the next CREDIT.
    public var initialCredit: UInt32
    public var ackMode: AckMode

    public init(subscriptionID: UInt32, filter: String, start: StartPosition = .latest, durableName: String = "",
                initialCredit: UInt32, ackMode: AckMode = .none) {
        self.subscriptionID = subscriptionID
        self.filter = filter
        self.start = start
        self.durableName = durableName
        self.initialCredit = initialCredit
        self.ackMode = ackMode
    }

    public var isDurable: Bool { !durableName.isEmpty }
}

/// Broker → client: the subscription is open (code 0) or refused (§4.7).
public struct SubscribeAck: Sendable, Hashable {
    public var subscriptionID: UInt32
    /// 0 when accepted, else a ``RelayErrorCode`` raw value.
    public var code: UInt16
    /// When accepted: the first sequence the subscription will deliver.
    public var firstSequence: UInt64
    public var message: String

    public init(subscriptionID: UInt32, code: UInt16, firstSequence: UInt64, message: String) {
        self.subscriptionID = subscriptionID
        self.code = code
        self.firstSequence = firstSequence
        self.message = message
    }

    public static func accepted(subscriptionID: UInt32, firstSequence: UInt64) -> SubscribeAck {
        SubscribeAck(subscriptionID: subscriptionID, code: 0, firstSequence: firstSequence, message: "")
    }

    public static func refused(subscriptionID: UInt32, code: RelayErrorCode, message: String) -> SubscribeAck {
        SubscribeAck(subscriptionID: subscriptionID, code: code.rawValue, firstSequence: 0, message: message)
    }

    public var isAccepted: Bool { code == 0 }
    public var errorCode: RelayErrorCode? { RelayErrorCode(rawValue: code) }
}

/// Client → broker: allow `credit` more MSG frames on a subscription (§4.9).
public struct Credit: Sendable, Hashable {
    public var subscriptionID: UInt32
    public var credit: UInt32

    public init(subscriptionID: UInt32, credit: UInt32) {
        self.subscriptionID = subscriptionID
        self.credit = credit
    }
}

/// Client → broker: every message up to `sequence` is processed (§4.10).
public struct Ack: Sendable, Hashable {
    public var subscriptionID: UInt32
    public var sequence: UInt64

    public init(subscriptionID: UInt32, sequence: UInt64) {
        self.subscriptionID = subscriptionID
        self.sequence = sequence
    }
}
