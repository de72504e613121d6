import Foundation
import NIOCore
import RelayCore
import Testing
@testable import RelayWire

/// Protocol/vectors, read from the repository (located from this file's path)
/// so the tests always check the vectors the spec ships.
enum Vectors {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocol/vectors")

    struct ValidFile: Decodable {
        let valid: [Valid]
        let skipped: [Skipped]
    }

    struct InvalidFile: Decodable {
        let invalid: [Invalid]
    }

    struct Valid: Decodable, CustomTestStringConvertible {
        let name: String
        let sender: String
        /// The receiver state the vector assumes: "fresh" (before HELLO/WELCOME) or "ready".
        let state: String
        let limits: Limits
        let hex: String
        let fields: [[String]]
        let frame: Fields
        var testDescription: String { name }
        var receiver: WireRole { sender == "client" ? .broker : .client }
    }

    struct Skipped: Decodable, CustomTestStringConvertible {
        let name: String
        let sender: String
        let state: String
        let limits: Limits
        let hex: String
        var testDescription: String { name }
        var receiver: WireRole { sender == "client" ? .broker : .client }
    }

    struct Invalid: Decodable, CustomTestStringConvertible {
        let name: String
        let receiver: String
        let state: String
        let stage: String
        let hex: String
        let error: String
        let limits: Limits
        var testDescription: String { name }
        var role: WireRole { receiver == "broker" ? .broker : .client }
        var expectHandshake: Bool { state == "fresh" }
    }

    /// The receiver's limits a vector assumes (every vector states them):
    /// `maxFrameSize` is the broker's WELCOME value or the client's HELLO
    /// value; a broker decoder before HELLO caps it at 8,192 itself.
    struct Limits: Decodable {
        let maxFrameSize: Int
        let maxPayload: Int
        let maxHeaders: Int
        let maxHeaderBytes: Int
        var publish: PublishLimits { PublishLimits(maxPayload: maxPayload, maxHeaders: maxHeaders, maxHeaderBytes: maxHeaderBytes) }
    }

    struct Start: Decodable {
        let kind: String
        let value: UInt64
    }

    struct Extension: Decodable {
        let type: UInt16
        let value: String
    }

    /// The decoded fields of one frame, as generate.py writes them.
    struct Fields: Decodable {
        let type: String
        var minVersion: UInt16?, maxVersion: UInt16?, maxFrameSize: UInt32?, sessionId: String?, clientName: String?
        var extensions: [Extension]?
        var version: UInt16?, maxPayload: UInt32?, maxHeaders: UInt16?, maxHeaderBytes: UInt32?, maxInFlight: UInt32?
        var maxSubscriptions: UInt32?, dedupWindow: UInt64?, principal: String?, subject: String?
        var fingerprint: String?, spiffeId: String?
        var publishId: UInt64?, topic: String?, headers: [[String]]?, payload: String?
        var sequence: UInt64?, timestamp: UInt64?, duplicate: Bool?, code: UInt16?, message: String?
        var subscriptionId: UInt32?, filter: String?, start: Start?, durableName: String?, initialCredit: UInt32?
        var ackMode: String?, firstSequence: UInt64?, credit: UInt32?
        var publisherPrincipal: String?, publisherFingerprint: String?, replayed: Bool?, token: UInt64?
        var requestId: UInt32?, operation: String?, body: String?, more: Bool?
    }

    static func load<T: Decodable>(_ file: String, as: T.Type) throws -> T {
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: data)
    }

    static let valid: [Valid] = (try? load("frames.json", as: ValidFile.self).valid) ?? []
    static let skipped: [Skipped] = (try? load("frames.json", as: ValidFile.self).skipped) ?? []
    static let invalid: [Invalid] = (try? load("invalid.json", as: InvalidFile.self).invalid) ?? []

    enum VectorError: Error, CustomStringConvertible {
        case missing(String, String)
        case badHex(String)
        var description: String {
            switch self {
            case .missing(let type, let field): return "\(type) vector lacks \(field)"
            case .badHex(let s): return "not hex: \(s.prefix(40))"
            }
        }
    }

    static func bytes(_ hex: String) throws -> [UInt8] {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { throw VectorError.badHex(hex) }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let byte = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else {
                throw VectorError.badHex(hex)
            }
            out.append(byte)
            i += 2
        }
        return out
    }

    static func buffer(_ hex: String) throws -> ByteBuffer { ByteBuffer(bytes: try bytes(hex)) }

    /// The Frame a vector describes, built independently of the decoder.
    static func frame(_ f: Fields) throws -> Frame {
        func need<T>(_ v: T?, _ name: String) throws -> T {
            guard let v else { throw VectorError.missing(f.type, name) }
            return v
        }
        func headers() throws -> Headers {
            try Headers(try need(f.headers, "headers").map { HeaderField(key: $0[0], value: $0[1]) })
        }
        func fingerprint(_ hex: String?) throws -> CertificateFingerprint {
            try need(CertificateFingerprint(hex: try need(hex, "fingerprint")), "32-byte fingerprint")
        }
        func extensions() throws -> [WireExtension] {
            try need(f.extensions, "extensions").map { WireExtension(type: $0.type, value: try buffer($0.value)) }
        }
        switch f.type {
        case "HELLO":
            return .hello(Hello(minVersion: try need(f.minVersion, "min_version"), maxVersion: try need(f.maxVersion, "max_version"),
                                maxFrameSize: try need(f.maxFrameSize, "max_frame_size"),
                                sessionID: try need(ProducerSessionID(bytes: try bytes(try need(f.sessionId, "session_id"))), "session id"),
                                clientName: try need(f.clientName, "client_name"), extensions: try extensions()))
        case "WELCOME":
            return .welcome(Welcome(version: try need(f.version, "version"), maxFrameSize: try need(f.maxFrameSize, "max_frame_size"),
                                    maxPayload: try need(f.maxPayload, "max_payload"), maxHeaders: try need(f.maxHeaders, "max_headers"),
                                    maxHeaderBytes: try need(f.maxHeaderBytes, "max_header_bytes"),
                                    maxInFlight: try need(f.maxInFlight, "max_in_flight"),
                                    maxSubscriptions: try need(f.maxSubscriptions, "max_subscriptions"),
                                    dedupWindow: try need(f.dedupWindow, "dedup_window"), principal: try need(f.principal, "principal"),
                                    subject: try need(f.subject, "subject"), fingerprint: try fingerprint(f.fingerprint),
                                    spiffeID: try need(f.spiffeId, "spiffe_id"), extensions: try extensions()))
        case "PUB":
            return .publish(Publish(publishID: try need(f.publishId, "publish_id"), topic: try need(f.topic, "topic"),
                                    headers: try headers(), payload: try buffer(try need(f.payload, "payload"))))
        case "PUBACK":
            return .publishAck(PublishAck(publishID: try need(f.publishId, "publish_id"), sequence: try need(f.sequence, "sequence"),
                                          timestamp: try need(f.timestamp, "timestamp"), duplicate: try need(f.duplicate, "duplicate")))
        case "PUBERR":
            return .publishError(PublishError(publishID: try need(f.publishId, "publish_id"), rawCode: try need(f.code, "code"),
                                              message: try need(f.message, "message")))
        case "SUB":
            let s = try need(f.start, "start")
            let start: StartPosition
            switch s.kind {
            case "latest": start = .latest
            case "earliest": start = .earliest
            case "sequence": start = .sequence(s.value)
            case "time": start = .time(s.value)
            default: start = .last(s.value)
            }
            return .subscribe(Subscribe(subscriptionID: try need(f.subscriptionId, "subscription_id"), filter: try need(f.filter, "filter"),
                                        start: start, durableName: try need(f.durableName, "durable_name"),
                                        initialCredit: try need(f.initialCredit, "initial_credit"),
                                        ackMode: try need(f.ackMode, "ack_mode") == "cumulative" ? .cumulative : .none))
        case "SUBACK":
            return .subscribeAck(SubscribeAck(subscriptionID: try need(f.subscriptionId, "subscription_id"), code: try need(f.code, "code"),
                                              firstSequence: try need(f.firstSequence, "first_sequence"), message: try need(f.message, "message")))
        case "UNSUB":
            return .unsubscribe(subscriptionID: try need(f.subscriptionId, "subscription_id"))
        case "CREDIT":
            return .credit(Credit(subscriptionID: try need(f.subscriptionId, "subscription_id"), credit: try need(f.credit, "credit")))
        case "ACK":
            return .ack(Ack(subscriptionID: try need(f.subscriptionId, "subscription_id"), sequence: try need(f.sequence, "sequence")))
        case "MSG":
            return .message(Message(subscriptionID: try need(f.subscriptionId, "subscription_id"), sequence: try need(f.sequence, "sequence"),
                                    timestamp: try need(f.timestamp, "timestamp"), topic: try need(f.topic, "topic"),
                                    publisherPrincipal: try need(f.publisherPrincipal, "publisher_principal"),
                                    publisherFingerprint: try fingerprint(f.publisherFingerprint), headers: try headers(),
                                    payload: try buffer(try need(f.payload, "payload")), replayed: try need(f.replayed, "replayed")))
        case "PING": return .ping(token: try need(f.token, "token"))
        case "PONG": return .pong(token: try need(f.token, "token"))
        case "ERR":
            return .error(ErrorFrame(rawCode: try need(f.code, "code"), subscriptionID: try need(f.subscriptionId, "subscription_id"),
                                     message: try need(f.message, "message")))
        case "BYE":
            return .bye(Bye(code: try need(f.code, "code"), message: try need(f.message, "message")))
        case "ADMIN":
            return .admin(AdminRequest(requestID: try need(f.requestId, "request_id"), operation: try need(f.operation, "operation"),
                                       body: try buffer(try need(f.body, "body"))))
        case "ADMINREPLY":
            return .adminReply(AdminReply(requestID: try need(f.requestId, "request_id"), code: try need(f.code, "code"),
                                          message: try need(f.message, "message"), body: try buffer(try need(f.body, "body")),
                                          more: try need(f.more, "more")))
        default:
            throw VectorError.missing(f.type, "a known type")
        }
    }
}
