import RelayCore

/// A refused operation: the code and a message saying what was wrong.
/// Codes ≥ 0x0100 refuse one operation (PUBERR, SUBACK) and the connection
/// stays open.
public struct OperationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: RelayErrorCode
    public var message: String

    public init(_ code: RelayErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}

/// The broker's limits a PUB is checked against (WELCOME announces them).
public struct PublishLimits: Sendable, Hashable {
    public var maxPayload: Int
    public var maxHeaders: Int
    /// Key plus value bytes of one header block.
    public var maxHeaderBytes: Int

    public init(maxPayload: Int = 1 << 20, maxHeaders: Int = 64, maxHeaderBytes: Int = 16 << 10) {
        self.maxPayload = maxPayload
        self.maxHeaders = maxHeaders
        self.maxHeaderBytes = maxHeaderBytes
    }
}

/// The operation-level checks of Protocol/relay-v1.md §4.3 and §4.6, in one
/// place so the broker (refusing) and the client (failing early, before a
/// round trip) agree. They run after decoding: a bad topic or filter refuses
/// one operation and never closes the connection, which is why the decoder
/// leaves them to this type.
public enum OperationValidation {
    /// Checks a PUB in the spec's order (topic, reserved, payload, headers)
    /// and returns its topic. Authorisation is the caller's last step.
    public static func validate(_ publish: Publish, limits: PublishLimits) throws(OperationError) -> Topic {
        var previous: Topic?
        return try validate(publish, limits: limits, previous: &previous)
    }

    /// ``validate(_:limits:)`` for a session that publishes to the same
    /// topic again and again: when the PUB's topic equals `previous` (the
    /// last topic that passed the grammar), the grammar is not run again
    /// (the verdict depends on the bytes alone); otherwise a valid topic
    /// becomes the new `previous`. Every other check runs as before.
    public static func validate(_ publish: Publish, limits: PublishLimits,
                                previous: inout Topic?) throws(OperationError) -> Topic {
        let topic: Topic
        if let last = previous, last.value == publish.topic {
            topic = last
        } else {
            do {
                topic = try Topic(publish.topic)
            } catch {
                throw OperationError(.invalidTopic, "topic \"\(printable(publish.topic))\": \(error)")
            }
            previous = topic
        }
        if topic.isReserved {
            throw OperationError(.reservedTopic, "topic \"\(topic)\" starts with '_', which is reserved for the broker")
        }
        let size = publish.payload.readableBytes
        guard size <= limits.maxPayload else {
            throw OperationError(.payloadTooLarge, "payload is \(size) bytes; the broker accepts at most \(limits.maxPayload)")
        }
        try validate(publish.headers, limits: limits)
        return topic
    }

    /// Header rules (§3): count, key grammar, total size. O(1): the decoder
    /// recorded the facts while it validated the block.
    public static func validate(_ headers: Headers, limits: PublishLimits) throws(OperationError) {
        guard headers.count <= limits.maxHeaders else {
            throw OperationError(.invalidHeaders, "\(headers.count) headers; the broker accepts at most \(limits.maxHeaders)")
        }
        guard headers.keysAreValid else {
            let bad = headers.first { !Headers.isValidKey($0.key.utf8) }?.key ?? ""
            throw OperationError(.invalidHeaders,
                                 "header key \"\(printable(bad))\" must be 1-255 bytes of A-Z a-z 0-9 - _ .")
        }
        guard headers.contentBytes <= limits.maxHeaderBytes else {
            throw OperationError(.invalidHeaders,
                                 "headers hold \(headers.contentBytes) bytes; the broker accepts at most \(limits.maxHeaderBytes)")
        }
    }

    /// Checks a SUB and returns its filter: filter grammar, start position
    /// values, durable name grammar.
    public static func validate(_ subscribe: Subscribe) throws(OperationError) -> TopicFilter {
        let filter: TopicFilter
        do {
            filter = try TopicFilter(subscribe.filter)
        } catch {
            throw OperationError(.invalidFilter, "filter \"\(printable(subscribe.filter))\": \(error)")
        }
        switch subscribe.start {
        case .sequence(0):
            throw OperationError(.invalidStartPosition, "sequences start at 1; use 'earliest' for the oldest retained message")
        case .last(0):
            throw OperationError(.invalidStartPosition, "'last' needs N of at least 1")
        default:
            break
        }
        let durable = subscribe.durableName.utf8
        if !durable.isEmpty && !(durable.count <= 255 && durable.allSatisfy(isDurableNameByte)) {
            throw OperationError(.invalidStartPosition, "durable name \"\(printable(subscribe.durableName))\" "
                + "must be 1-255 bytes of A-Z a-z 0-9 - _")
        }
        return filter
    }

    @inline(__always)
    static func isDurableNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// Quotes client text for an error message without letting control
    /// characters into logs, and bounded in length.
    static func printable(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars.prefix(80) {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return s.unicodeScalars.count > 80 ? out + "…" : out
    }
}
