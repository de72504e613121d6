import Foundation

/// The JSON bodies of ADMINREPLY results (Protocol/relay-v1.md §4.15),
/// shared by the broker (which encodes them) and relayctl (which decodes
/// them and prints a table or, with `--format json`, the same keys). Keys
/// are snake_case (``AdminJSON``); times are RFC 3339 UTC strings; a value
/// the broker does not know is null, never a made-up zero.
public enum AdminJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// RFC 3339 with milliseconds, UTC (`2026-12-03T12:01:26.123Z`).
    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// A store timestamp (ns since the epoch) as ``timestamp(_:)``.
    public static func timestamp(nanoseconds: UInt64) -> String {
        timestamp(Date(timeIntervalSince1970: Double(nanoseconds) / 1e9))
    }
}

/// `status`.
public struct AdminStatus: Codable, Sendable, Equatable {
    public var version: String
    public var startedAt: String
    public var uptimeSeconds: Double
    /// SHA-256 (hex) of the config file as it was when last loaded.
    public var configPath: String
    public var configDigest: String?
    public var configLoadedAt: String
    public var dataDirectory: String
    public var storeUsedBytes: Int?
    public var storeLimitBytes: Int?
    public var storeMessages: Int?
    public var connections: Int
    public var messagesInTotal: UInt64
    public var messagesOutTotal: UInt64
    /// Messages per second since the previous status call (or since start).
    public var messagesInPerSecond: Double
    public var messagesOutPerSecond: Double
    /// The server certificate's notAfter (ISO 8601, UTC).
    public var tlsCertificateNotAfter: String? = nil
    /// The earliest nextUpdate of the loaded CRLs and that CRL's issuer:
    /// past it every client chain the CRL covers is refused. Nil without a
    /// CRL that has one.
    public var crlNextUpdate: String? = nil
    public var crlIssuer: String? = nil
}

/// One subscription of a connection.
public struct AdminSubscription: Codable, Sendable, Equatable {
    public var connectionId: UInt64
    public var principal: String
    public var subscriptionId: UInt32
    public var filter: String
    public var durable: String?
    public var ackMode: String
    public var nextSequence: UInt64
    public var credit: UInt64
    public var bufferedMessages: Int
}

/// One authenticated connection (`connections`).
public struct AdminConnection: Codable, Sendable, Equatable {
    public var id: UInt64
    public var principal: String
    /// SHA-256 of the client certificate, hex.
    public var fingerprint: String
    public var subject: String
    /// `127.0.0.1:58372`, `[::1]:58372`.
    public var remoteAddress: String
    public var connectedSince: String
    public var messagesIn: UInt64
    public var messagesOut: UInt64
    public var subscriptions: Int
    /// Encoded frames waiting to be written plus messages buffered for its subscriptions.
    public var bytesQueued: Int
}

/// One durable cursor (`durables`).
public struct AdminDurable: Codable, Sendable, Equatable {
    public var name: String
    /// The owner digest (hex), as the store keys the cursor (docs/security.md, "Identity scoping").
    public var owner: String
    /// The principal of the last session seen attached since relayd started; null when none.
    public var principal: String?
    /// The filter of the last attach seen since relayd started; null when unknown.
    public var filter: String?
    public var attached: Bool
    public var cursor: UInt64
    /// Stored messages matching the filter (every topic when it is unknown) after the cursor.
    public var lagMessages: UInt64
    /// True when counting stopped at the scan limit: the lag is at least `lag_messages`.
    public var lagCapped: Bool
    /// Age of the oldest message not yet acknowledged; 0 when none is waiting.
    public var lagSeconds: Double
    /// When the cursor last moved, since relayd started; null when not seen.
    public var lastAck: String?
}

/// One topic (`topics`). `bytes` is absent where the backend does not count
/// them per topic (jetstream), a time where the message at that end is not
/// a Relay record (docs/cluster.md).
public struct AdminTopic: Codable, Sendable, Equatable {
    public var topic: String
    public var messages: UInt64
    public var bytes: UInt64?
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var firstTime: String?
    public var lastTime: String?
}

/// The answer of a mutating operation (`purge`, `durable_delete`, `disconnect`, `reload`, `backup`'s last frame).
public struct AdminOutcome: Codable, Sendable, Equatable {
    public var operation: String
    public var result: String
    public var messages: UInt64?
    /// `purge`: absent where the backend does not say them (jetstream answers the message count only).
    public var bytes: UInt64?
    public var topics: Int?
    /// Why a `reload` was refused (the config error), as relayd logs it.
    public var reason: String?

    public init(operation: String, result: String, messages: UInt64? = nil, bytes: UInt64? = nil, topics: Int? = nil,
                reason: String? = nil) {
        (self.operation, self.result, self.messages, self.bytes, self.topics) = (operation, result, messages, bytes, topics)
        self.reason = reason
    }
}

/// Lists are wrapped in an object so a later field can be added without breaking scripts.
public struct AdminList<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var items: [Item]
    public init(items: [Item]) { self.items = items }
}
