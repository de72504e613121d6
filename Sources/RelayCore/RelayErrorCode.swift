/// The error codes of Protocol/relay-v1.md §Error codes, shared by the
/// broker, the client library and the CLIs.
///
/// Codes below 0x0100 end the connection (sent in ERR, then the broker
/// closes). Codes from 0x0100 refuse one operation (PUBERR, SUBACK with an
/// error, or ERR tied to a subscription) and the connection stays open.
public enum RelayErrorCode: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    // MARK: Connection-level: the connection closes after ERR.
    case protocolViolation = 0x0001
    case frameTooLarge = 0x0002
    case unknownFrameType = 0x0003
    case unsupportedVersion = 0x0004
    case helloRequired = 0x0005
    case helloTimeout = 0x0006
    case identityRefused = 0x0007
    case certificateRevoked = 0x0008
    case certificateExpired = 0x0009
    case tooManyConnections = 0x000A
    case serverShuttingDown = 0x000B
    case invalidUTF8 = 0x000C
    case creditOverflow = 0x000D
    case writeStalled = 0x000E
    /// An operator ended the session (`relayctl disconnect`); 0x0020 so codes added after 0x000E do not collide.
    case disconnectedByOperator = 0x0020
    case internalError = 0x00FF

    // MARK: Operation-level: the connection stays open.
    case invalidTopic = 0x0100
    case invalidFilter = 0x0101
    case notAuthorized = 0x0102
    case storageFull = 0x0103
    case storageFailure = 0x0104
    case tooManySubscriptions = 0x0105
    case tooManyInFlight = 0x0106
    case invalidHeaders = 0x0107
    case payloadTooLarge = 0x0108
    case unknownSubscription = 0x0109
    case duplicateSubscriptionID = 0x010A
    case durableInUse = 0x010B
    case invalidStartPosition = 0x010C
    case subscriptionRevoked = 0x010D
    case reservedTopic = 0x010E
    case storageUnavailable = 0x010F
    /// A durable name reused with another filter (§4.6): refused, the cursor is untouched.
    case durableFilterMismatch = 0x0110
    /// A new durable name beyond `[limits] max_durables` of its owner (§4.6): refused, nothing stored.
    case tooManyDurables = 0x0111
    /// The durable was deleted (`relayctl durable delete`, in a cluster through
    /// another edge) while this subscription had it attached (§4.13): ended, its cursor not stored again.
    case durableDeleted = 0x0112
    // Admin operations (ADMIN/ADMINREPLY, Protocol/relay-v1.md §4.15); from
    // 0x0120 so codes other work adds after 0x010E do not collide.
    case adminNotSupported = 0x0120
    case invalidAdminRequest = 0x0121
    case adminTargetNotFound = 0x0122

    /// Whether the broker closes the connection after reporting this code.
    public var closesConnection: Bool { rawValue < 0x0100 }

    /// The stable snake_case name used in logs, metrics and the CLIs' JSON.
    public var name: String {
        switch self {
        case .protocolViolation: return "protocol_violation"
        case .frameTooLarge: return "frame_too_large"
        case .unknownFrameType: return "unknown_frame_type"
        case .unsupportedVersion: return "unsupported_version"
        case .helloRequired: return "hello_required"
        case .helloTimeout: return "hello_timeout"
        case .identityRefused: return "identity_refused"
        case .certificateRevoked: return "certificate_revoked"
        case .certificateExpired: return "certificate_expired"
        case .tooManyConnections: return "too_many_connections"
        case .serverShuttingDown: return "server_shutting_down"
        case .invalidUTF8: return "invalid_utf8"
        case .creditOverflow: return "credit_overflow"
        case .writeStalled: return "write_stalled"
        case .disconnectedByOperator: return "disconnected_by_operator"
        case .internalError: return "internal_error"
        case .invalidTopic: return "invalid_topic"
        case .invalidFilter: return "invalid_filter"
        case .notAuthorized: return "not_authorized"
        case .storageFull: return "storage_full"
        case .storageFailure: return "storage_failure"
        case .tooManySubscriptions: return "too_many_subscriptions"
        case .tooManyInFlight: return "too_many_in_flight"
        case .invalidHeaders: return "invalid_headers"
        case .payloadTooLarge: return "payload_too_large"
        case .unknownSubscription: return "unknown_subscription"
        case .duplicateSubscriptionID: return "duplicate_subscription_id"
        case .durableInUse: return "durable_in_use"
        case .invalidStartPosition: return "invalid_start_position"
        case .subscriptionRevoked: return "subscription_revoked"
        case .reservedTopic: return "reserved_topic"
        case .storageUnavailable: return "storage_unavailable"
        case .durableFilterMismatch: return "durable_filter_mismatch"
        case .tooManyDurables: return "too_many_durables"
        case .durableDeleted: return "durable_deleted"
        case .adminNotSupported: return "admin_not_supported"
        case .invalidAdminRequest: return "invalid_admin_request"
        case .adminTargetNotFound: return "admin_target_not_found"
        }
    }

    /// One sentence for humans: what happened and what to do.
    public var explanation: String {
        switch self {
        case .protocolViolation: return "the peer sent a malformed frame; this is a client bug"
        case .frameTooLarge: return "a frame exceeded the negotiated maximum frame size; send smaller messages"
        case .unknownFrameType: return "the peer sent a frame type this protocol version does not define"
        case .unsupportedVersion: return "no protocol version in common; upgrade the client or the broker"
        case .helloRequired: return "the first frame after the TLS handshake must be HELLO"
        case .helloTimeout: return "HELLO did not arrive in time after the TLS handshake"
        case .identityRefused: return "the broker's policy grants this certificate nothing; ask the operator to add a rule"
        case .certificateRevoked: return "the client certificate has been revoked; obtain a new one"
        case .certificateExpired: return "the client certificate expired during the session; renew it"
        case .tooManyConnections: return "the broker is at its connection limit; retry later"
        case .serverShuttingDown: return "the broker is shutting down; reconnect after it restarts"
        case .invalidUTF8: return "a text field was not valid UTF-8"
        case .creditOverflow: return "granted credit exceeded the protocol maximum"
        case .writeStalled: return "the client read none of the broker's output for too long; read the connection continuously"
        case .disconnectedByOperator: return "an operator ended this session (relayctl disconnect); reconnect if you are still allowed to"
        case .internalError: return "the broker hit an internal error; see its log"
        case .invalidTopic: return "the topic breaks the topic grammar (dot-separated tokens of A-Z a-z 0-9 _ -)"
        case .invalidFilter: return "the filter breaks the filter grammar ('*' and '>' are whole tokens, '>' last)"
        case .notAuthorized: return "the policy does not allow this identity to do that on that topic"
        case .storageFull: return "the broker's store is full; retry after retention frees space"
        case .storageFailure: return "the broker could not store the message; it was not accepted"
        case .tooManySubscriptions: return "the connection is at its subscription limit"
        case .tooManyInFlight: return "too many unacknowledged publishes; wait for PUBACKs before sending more"
        case .invalidHeaders: return "headers break the header rules (count, key grammar or size)"
        case .payloadTooLarge: return "the payload exceeds the broker's message size limit"
        case .unknownSubscription: return "no subscription with that id on this connection"
        case .duplicateSubscriptionID: return "a subscription with that id already exists on this connection"
        case .durableInUse: return "that durable subscription is already attached to another connection"
        case .invalidStartPosition: return "the start position is not valid for this subscription"
        case .subscriptionRevoked: return "the policy no longer allows this subscription (after a reload)"
        case .reservedTopic: return "topics starting with '_' are reserved for the broker"
        case .storageUnavailable: return "the replicated log has no quorum; nothing was stored, retry the same publish later"
        case .durableFilterMismatch: return "that durable name is in use with another filter; use another name, the same filter, or delete it with relayctl durable delete"
        case .tooManyDurables: return "this identity holds as many durable subscriptions as the broker keeps for one; reuse one, delete unused ones with relayctl durable delete, or ask the operator to raise max_durables"
        case .durableDeleted: return "the durable subscription was deleted by an operator while attached (in a cluster, possibly through another broker); its cursor is gone, and a new SUB of the name starts a new durable from its start position"
        case .adminNotSupported: return "this broker's storage backend does not support that admin operation"
        case .invalidAdminRequest: return "the admin operation is unknown or its arguments are invalid; see relayctl --help"
        case .adminTargetNotFound: return "no such connection or durable; list them with relayctl connections or relayctl durables"
        }
    }

    public var description: String { "\(name) (0x\(String(rawValue, radix: 16, uppercase: true)))" }
}
