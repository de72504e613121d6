import NIOCore
import RelayCore

extension Frame {
    /// Appends this frame to `buffer`, for callers that batch several frames
    /// into one write. On error nothing is appended.
    ///
    /// - Parameter maxFrameSize: the peer's limit on the length field;
    ///   a larger frame throws `frame_too_large`.
    /// - Throws: ``WireError`` when a field cannot be expressed (a string
    ///   over 65,535 bytes) or the frame exceeds `maxFrameSize`.
    public func encode(into buffer: inout ByteBuffer,
                       maxFrameSize: Int = Int(FrameLayout.maximumMaxFrameSize)) throws(WireError) {
        // The broker's one frame per published message: one write, not seven.
        if case .publishAck(let ack) = self, ByteBuffer.publishAckFrameSize - 4 <= maxFrameSize {
            buffer.writePublishAck(ack)
            return
        }
        let start = buffer.writerIndex
        do {
            buffer.writeInteger(UInt32(0))  // the length, set below once the body is written
            try writeBody(into: &buffer)
        } catch {
            buffer.moveWriterIndex(to: start)
            throw error
        }
        let length = buffer.writerIndex - start - 4
        guard length <= maxFrameSize, length <= Int(UInt32.max) else {
            buffer.moveWriterIndex(to: start)
            throw WireError(.frameTooLarge, "\(type) frame is \(length) bytes; the peer accepts at most \(maxFrameSize)")
        }
        buffer.setInteger(UInt32(length), at: start)
    }

    /// The frame as a new buffer.
    public func encoded(maxFrameSize: Int = Int(FrameLayout.maximumMaxFrameSize)) throws(WireError) -> ByteBuffer {
        var buffer = ByteBuffer()
        try encode(into: &buffer, maxFrameSize: maxFrameSize)
        return buffer
    }

    private func writeBody(into b: inout ByteBuffer) throws(WireError) {
        switch self {
        case .hello(let f):
            b.writeMultipleIntegers(FrameType.hello.rawValue, UInt8(0), f.minVersion, f.maxVersion, f.maxFrameSize,
                                    f.sessionID.high, f.sessionID.low)
            try b.writeStr16(f.clientName, "HELLO client name")
            try b.writeExtensions(f.extensions)
        case .welcome(let f):
            b.writeMultipleIntegers(FrameType.welcome.rawValue, UInt8(0), f.version, f.maxFrameSize, f.maxPayload,
                                    f.maxHeaders, f.maxHeaderBytes, f.maxInFlight, f.maxSubscriptions)
            b.writeInteger(f.dedupWindow)
            try b.writeStr16(f.principal, "WELCOME principal")
            try b.writeStr16(f.subject, "WELCOME subject")
            f.fingerprint.write(into: &b)
            try b.writeStr16(f.spiffeID, "WELCOME spiffe id")
            try b.writeExtensions(f.extensions)
        case .publish(let f):
            b.reserveCapacity(minimumWritableBytes: 2 + 8 + 2 + f.topic.utf8.count + f.headers.wireSize
                + f.payload.readableBytes)
            b.writeMultipleIntegers(FrameType.publish.rawValue, UInt8(0), f.publishID)
            try b.writeStr16(f.topic, "PUB topic")
            f.headers.write(into: &b)
            b.writeImmutableBuffer(f.payload)
        case .publishAck(let f):
            b.writeMultipleIntegers(FrameType.publishAck.rawValue, f.duplicate ? PublishAck.duplicateFlag : 0,
                                    f.publishID, f.sequence, f.timestamp)
        case .publishError(let f):
            b.writeMultipleIntegers(FrameType.publishError.rawValue, UInt8(0), f.publishID, f.code)
            try b.writeStr16(f.message, "PUBERR message")
        case .subscribe(let f):
            b.writeMultipleIntegers(FrameType.subscribe.rawValue, UInt8(0), f.subscriptionID)
            try b.writeStr16(f.filter, "SUB filter")
            b.writeMultipleIntegers(f.start.kind, f.start.value)
            try b.writeStr16(f.durableName, "SUB durable name")
            b.writeMultipleIntegers(f.initialCredit, f.ackMode.rawValue)
        case .subscribeAck(let f):
            b.writeMultipleIntegers(FrameType.subscribeAck.rawValue, UInt8(0), f.subscriptionID, f.code, f.firstSequence)
            try b.writeStr16(f.message, "SUBACK message")
        case .unsubscribe(let id):
            b.writeMultipleIntegers(FrameType.unsubscribe.rawValue, UInt8(0), id)
        case .credit(let f):
            b.writeMultipleIntegers(FrameType.credit.rawValue, UInt8(0), f.subscriptionID, f.credit)
        case .ack(let f):
            b.writeMultipleIntegers(FrameType.ack.rawValue, UInt8(0), f.subscriptionID, f.sequence)
        case .message(let f):
            b.writeMultipleIntegers(FrameType.message.rawValue, f.replayed ? Message.replayedFlag : 0,
                                    f.subscriptionID, f.sequence, f.timestamp)
            try b.writeStr16(f.topic, "MSG topic")
            try b.writeStr16(f.publisherPrincipal, "MSG publisher principal")
            f.publisherFingerprint.write(into: &b)
            f.headers.write(into: &b)
            b.writeImmutableBuffer(f.payload)
        case .ping(let token):
            b.writeMultipleIntegers(FrameType.ping.rawValue, UInt8(0), token)
        case .pong(let token):
            b.writeMultipleIntegers(FrameType.pong.rawValue, UInt8(0), token)
        case .error(let f):
            b.writeMultipleIntegers(FrameType.error.rawValue, UInt8(0), f.code, f.subscriptionID)
            try b.writeStr16(f.message, "ERR message")
        case .bye(let f):
            b.writeMultipleIntegers(FrameType.bye.rawValue, UInt8(0), f.code)
            try b.writeStr16(f.message, "BYE message")
        case .admin(let f):
            b.writeMultipleIntegers(FrameType.admin.rawValue, UInt8(0), f.requestID)
            try b.writeStr16(f.operation, "ADMIN operation")
            b.writeImmutableBuffer(f.body)
        case .adminReply(let f):
            b.writeMultipleIntegers(FrameType.adminReply.rawValue, f.more ? AdminReply.moreFlag : 0, f.requestID, f.code)
            try b.writeStr16(f.message, "ADMINREPLY message")
            b.writeImmutableBuffer(f.body)
        }
    }
}

extension ByteBuffer {
    /// Appends `frame`; the name the first users of this module know.
    public mutating func writeFrame(_ frame: Frame,
                                    maxFrameSize: Int = Int(FrameLayout.maximumMaxFrameSize)) throws(WireError) {
        try frame.encode(into: &self, maxFrameSize: maxFrameSize)
    }

    @inline(__always)
    mutating func writeStr16(_ string: String, _ field: StaticString) throws(WireError) {
        let count = string.utf8.count
        guard count <= Int(UInt16.max) else {
            throw WireError(.internalError, "\(field) is \(count) bytes; a str16 holds at most 65535")
        }
        writeInteger(UInt16(count))
        writeString(string)
    }

    mutating func writeExtensions(_ extensions: [WireExtension]) throws(WireError) {
        guard extensions.count <= FrameLayout.maxExtensions else {
            throw WireError(.internalError, "\(extensions.count) extensions; at most \(FrameLayout.maxExtensions) are allowed")
        }
        writeInteger(UInt16(extensions.count))
        for e in extensions {
            guard e.value.readableBytes <= Int(UInt16.max) else {
                throw WireError(.internalError, "extension \(e.type) value exceeds 65535 bytes")
            }
            writeMultipleIntegers(e.type, UInt16(e.value.readableBytes))
            writeImmutableBuffer(e.value)
        }
    }
}
