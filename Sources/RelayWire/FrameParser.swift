import NIOCore
import RelayCore

/// Parses frames from bytes, statelessly, checking in the order §2 of the
/// spec fixes. ``RelayFrameDecoder`` keeps the state it needs (whether the
/// handshake frame has arrived, hence the limit and which types may come).
public enum FrameParser {
    /// Reads the next core frame from the front of `buffer`, skipping
    /// extension frames (0x80–0xFF) whole.
    ///
    /// - Returns: nil, consuming nothing of the incomplete frame, when the
    ///   buffer does not yet hold a whole frame.
    /// - Throws: as soon as a length exceeds `maxFrameSize`, checked when its
    ///   4 bytes are readable: before waiting for, or allocating for, the body.
    ///   Every thrown error is connection-level; the reader index is then
    ///   unspecified.
    /// - Parameter handshakeDone: whether HELLO (broker side) or WELCOME
    ///   (client side) has been received: before, only that frame (or, for a
    ///   client, ERR or BYE) may come; after, neither HELLO nor WELCOME may.
    @inline(__always)
    public static func parse(_ buffer: inout ByteBuffer, role: WireRole, maxFrameSize: Int,
                             handshakeDone: Bool = true) throws(WireError) -> Frame? {
        var strings = MessageStringCache()
        return try parse(&buffer, role: role, maxFrameSize: maxFrameSize, handshakeDone: handshakeDone, strings: &strings)
    }

    /// ``parse(_:role:maxFrameSize:handshakeDone:)`` for a decoder that
    /// keeps `strings` across frames (``RelayFrameDecoder``).
    @inline(__always)
    public static func parse(_ buffer: inout ByteBuffer, role: WireRole, maxFrameSize: Int,
                             handshakeDone: Bool, strings: inout MessageStringCache) throws(WireError) -> Frame? {
        while true {
            guard let length32 = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
            let length = Int(length32)
            guard length <= maxFrameSize else {
                throw WireError(.frameTooLarge, "a frame announces \(length) bytes; the limit is \(maxFrameSize)")
            }
            guard length >= FrameLayout.typeAndFlagsSize else {
                throw WireError(.protocolViolation, "a frame's length is \(length); it must be at least 2 (type and flags)")
            }
            guard buffer.readableBytes >= 4 + length,
                  let (typeByte, flags) = buffer.getMultipleIntegers(at: buffer.readerIndex + 4, as: (UInt8, UInt8).self)
            else { return nil }
            if typeByte >= FrameType.firstExtensionType {
                buffer.moveReaderIndex(forwardBy: 4 + length)
                continue
            }
            guard let type = FrameType(rawValue: typeByte) else {
                throw WireError(.unknownFrameType, "frame type 0x\(String(typeByte, radix: 16)) is not defined in relay v1")
            }
            guard role.mayReceive(type) else {
                throw WireError(.protocolViolation, "\(type) may not be sent by \(role.peerName)")
            }
            guard flags & ~type.definedFlags == 0 else {
                throw WireError(.protocolViolation,
                                "\(type) has undefined flag bits 0x\(String(flags & ~type.definedFlags, radix: 16)) set")
            }
            try checkOrder(type, role: role, handshakeDone: handshakeDone)
            buffer.moveReaderIndex(forwardBy: FrameLayout.headerSize)
            guard let body = buffer.readSlice(length: length - FrameLayout.typeAndFlagsSize) else { return nil }
            var reader = FrameReader(buffer: body, type: type)
            let frame = try parseBody(&reader, flags: flags, strings: &strings)
            try reader.finish()
            return frame
        }
    }

    /// The session order of §4.1/§4.2, checked before the body is read.
    @inline(__always)
    static func checkOrder(_ type: FrameType, role: WireRole, handshakeDone: Bool) throws(WireError) {
        if handshakeDone {
            if type == .hello || type == .welcome {
                throw WireError(.protocolViolation, "\(type) may be sent only once per connection")
            }
            return
        }
        switch (role, type) {
        case (.broker, .hello), (.client, .welcome), (.client, .error), (.client, .bye):
            return  // a refusal (identity_refused, shutting down, …) may come instead of WELCOME
        case (.broker, _):
            throw WireError(.helloRequired, "the first frame must be HELLO, got \(type)")
        case (.client, _):
            throw WireError(.protocolViolation, "the first broker frame must be WELCOME, ERR or BYE, got \(type)")
        }
    }

    @inline(__always)
    static func parseBody(_ r: inout FrameReader, flags: UInt8, strings: inout MessageStringCache) throws(WireError) -> Frame {
        switch r.type {
        case .publish:
            let id = try r.u64("publish id")
            // A publisher mostly repeats its topic: hand out the last one's String again.
            let topic = try r.string("topic", reusing: &strings.topic)
            let headers = try r.headers()
            return .publish(Publish(publishID: id, topic: topic, headers: headers, payload: r.rest()))
        case .message:
            let id = try r.u32("subscription id"), sequence = try r.u64("sequence"), time = try r.u64("timestamp")
            let topic = try r.string("topic", reusing: &strings.topic)
            let principal = try r.string("publisher principal", reusing: &strings.principal)
            let fingerprint = try r.fingerprint("publisher fingerprint")
            let headers = try r.headers()
            return .message(Message(subscriptionID: id, sequence: sequence, timestamp: time, topic: topic,
                                    publisherPrincipal: principal, publisherFingerprint: fingerprint,
                                    headers: headers, payload: r.rest(), replayed: flags & Message.replayedFlag != 0))
        case .publishAck:
            let id = try r.u64("publish id"), sequence = try r.u64("sequence"), time = try r.u64("timestamp")
            return .publishAck(PublishAck(publishID: id, sequence: sequence, timestamp: time,
                                          duplicate: flags & PublishAck.duplicateFlag != 0))
        case .publishError:
            let id = try r.u64("publish id"), code = try r.u16("code")
            return .publishError(PublishError(publishID: id, rawCode: code, message: try r.string("message")))
        case .credit:
            let id = try r.u32("subscription id")
            return .credit(Credit(subscriptionID: id, credit: try r.u32("credit")))
        case .ack:
            let id = try r.u32("subscription id")
            return .ack(Ack(subscriptionID: id, sequence: try r.u64("sequence")))
        case .hello: return .hello(try hello(&r))
        case .welcome: return .welcome(try welcome(&r))
        case .subscribe: return .subscribe(try subscribe(&r))
        case .subscribeAck:
            let id = try r.u32("subscription id"), code = try r.u16("code"), first = try r.u64("first sequence")
            return .subscribeAck(SubscribeAck(subscriptionID: id, code: code, firstSequence: first,
                                              message: try r.string("message")))
        case .unsubscribe:
            return .unsubscribe(subscriptionID: try r.u32("subscription id"))
        case .ping:
            return .ping(token: try r.u64("token"))
        case .pong:
            return .pong(token: try r.u64("token"))
        case .error:
            let code = try r.u16("code"), id = try r.u32("subscription id")
            return .error(ErrorFrame(rawCode: code, subscriptionID: id, message: try r.string("message")))
        case .bye:
            let code = try r.u16("code")
            return .bye(Bye(code: code, message: try r.string("message")))
        case .admin:
            let id = try r.u32("request id")
            guard id != 0 else { throw WireError(.protocolViolation, "ADMIN request id 0 is reserved") }
            let operation = try r.string("operation")
            return .admin(AdminRequest(requestID: id, operation: operation, body: r.rest()))
        case .adminReply:
            let id = try r.u32("request id"), code = try r.u16("code")
            let message = try r.string("message")
            return .adminReply(AdminReply(requestID: id, code: code, message: message, body: r.rest(),
                                          more: flags & AdminReply.moreFlag != 0))
        }
    }

    private static func hello(_ r: inout FrameReader) throws(WireError) -> Hello {
        let minVersion = try r.u16("min version"), maxVersion = try r.u16("max version")
        guard minVersion >= 1, minVersion <= maxVersion else {
            throw WireError(.protocolViolation,
                            "HELLO version range \(minVersion)...\(maxVersion) is empty or starts below 1")
        }
        let maxFrame = try r.u32("max frame size")
        try checkAnnounced(maxFrame, "HELLO")
        let session = try r.sessionID()
        let name = try r.string("client name", maxBytes: FrameLayout.maxClientNameBytes)
        return Hello(minVersion: minVersion, maxVersion: maxVersion, maxFrameSize: maxFrame, sessionID: session,
                     clientName: name, extensions: try r.extensions())
    }

    private static func welcome(_ r: inout FrameReader) throws(WireError) -> Welcome {
        let version = try r.u16("version")
        let maxFrame = try r.u32("max frame size")
        try checkAnnounced(maxFrame, "WELCOME")
        let maxPayload = try r.u32("max payload"), maxHeaders = try r.u16("max headers")
        let maxHeaderBytes = try r.u32("max header bytes"), maxInFlight = try r.u32("max in flight")
        let maxSubscriptions = try r.u32("max subscriptions"), dedup = try r.u64("dedup window")
        let principal = try r.string("principal"), subject = try r.string("subject")
        let fingerprint = try r.fingerprint("fingerprint")
        let spiffe = try r.string("spiffe id")
        return Welcome(version: version, maxFrameSize: maxFrame, maxPayload: maxPayload, maxHeaders: maxHeaders,
                       maxHeaderBytes: maxHeaderBytes, maxInFlight: maxInFlight, maxSubscriptions: maxSubscriptions,
                       dedupWindow: dedup, principal: principal, subject: subject, fingerprint: fingerprint,
                       spiffeID: spiffe, extensions: try r.extensions())
    }

    private static func subscribe(_ r: inout FrameReader) throws(WireError) -> Subscribe {
        let id = try r.u32("subscription id")
        guard id != 0 else {
            throw WireError(.protocolViolation, "SUB subscription id 0 is reserved (ERR uses it for the connection)")
        }
        let filter = try r.string("filter")
        let kind = try r.u8("start kind"), value = try r.u64("start value")
        let start = try StartPosition.decode(kind: kind, value: value)
        let durable = try r.string("durable name")
        let credit = try r.u32("initial credit")
        let modeByte = try r.u8("ack mode")
        guard let mode = AckMode(rawValue: modeByte) else {
            throw WireError(.protocolViolation, "SUB ack mode \(modeByte) is not defined (0 none, 1 cumulative)")
        }
        return Subscribe(subscriptionID: id, filter: filter, start: start, durableName: durable,
                         initialCredit: credit, ackMode: mode)
    }

    private static func checkAnnounced(_ maxFrame: UInt32, _ frame: StaticString) throws(WireError) {
        guard maxFrame >= FrameLayout.minimumMaxFrameSize, maxFrame <= FrameLayout.maximumMaxFrameSize else {
            throw WireError(.protocolViolation, "\(frame) max frame size \(maxFrame) is outside "
                + "\(FrameLayout.minimumMaxFrameSize)...\(FrameLayout.maximumMaxFrameSize)")
        }
    }
}
