import NIOCore
import NIOEmbedded
import RelayCore
import RelayTestSupport
import Testing
@testable import RelayWire

@Suite("Frame codec")
struct CodecTests {
    let payload = ByteBuffer(bytes: (0..<128).map { UInt8($0) })

    @Test("the pre-HELLO limit of 8192 bytes lifts once HELLO has arrived")
    func preHelloLimit() throws {
        var decoder = RelayFrameDecoder(role: .broker)
        #expect(decoder.currentMaxFrameSize == FrameLayout.preHelloMaxFrameSize)
        var input = try Frame.hello(Hello(clientName: "t")).encoded()
        let big = Frame.publish(Publish(publishID: 1, topic: "a", payload: ByteBuffer(repeating: 1, count: 100_000)))
        try big.encode(into: &input)
        #expect(try decoder.decodeFrame(&input) == .hello(Hello(clientName: "t")))
        #expect(decoder.currentMaxFrameSize == FrameLayout.defaultMaxFrameSize)
        #expect(try decoder.decodeFrame(&input) == big)
    }

    @Test("a client decoder accepts ERR or BYE instead of WELCOME")
    func refusalBeforeWelcome() throws {
        for first in [Frame.error(ErrorFrame(code: .identityRefused, message: "no rule")), .bye(Bye(code: .serverShuttingDown, message: ""))] {
            var decoder = RelayFrameDecoder(role: .client)
            var input = try first.encoded()
            #expect(try decoder.decodeFrame(&input) == first)
        }
    }

    @Test("a decoded payload is a slice of the receive buffer, not a copy")
    func payloadIsZeroCopy() throws {
        let frame = Frame.publish(Publish(publishID: 9, topic: "orders.created", payload: payload))
        var input = try frame.encoded()
        let inputBase = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        var decoder = RelayFrameDecoder(role: .broker, expectHandshake: false)
        guard case .publish(let decoded) = try decoder.decodeFrame(&input) else {
            Issue.record("expected PUB")
            return
        }
        let payloadBase = decoded.payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        // 6-byte header, 8 publish id, 2+14 topic, 2 header count.
        #expect(payloadBase == inputBase + 32)
    }

    @Test("the encoder refuses frames its side may not send, and frames above the peer's limit, writing nothing")
    func encoderRefuses() throws {
        var out = ByteBuffer()
        let pub = Frame.publish(Publish(publishID: 1, topic: "a", payload: payload))
        #expect(throws: WireError.self) { try RelayFrameEncoder(role: .broker).encode(data: pub, out: &out) }
        #expect(throws: WireError.self) {
            try RelayFrameEncoder(role: .client).encode(data: .publishAck(PublishAck(publishID: 1, sequence: 1, timestamp: 1)), out: &out)
        }
        #expect(throws: WireError(.frameTooLarge, "PUB frame is 143 bytes; the peer accepts at most 142")) {
            try pub.encode(into: &out, maxFrameSize: 142)
        }
        #expect(out.readableBytes == 0)
        try pub.encode(into: &out, maxFrameSize: 143)
        #expect(out.readableBytes == 147)
    }

    @Test("a str16 over 65535 bytes cannot be encoded and nothing is written")
    func oversizedString() throws {
        var out = ByteBuffer(bytes: [1, 2, 3])
        let frame = Frame.error(ErrorFrame(code: .internalError, message: String(repeating: "x", count: 65536)))
        #expect(throws: WireError.self) { try frame.encode(into: &out) }
        #expect(Array(buffer: out) == [1, 2, 3])
    }

    @Test("PreparedMessage writes the same bytes as encoding the MSG frame")
    func preparedMessageMatchesFrame() throws {
        let fingerprint = try #require(CertificateFingerprint(bytes: [UInt8](repeating: 0xEE, count: 32)))
        let headers: Headers = [("content-type", "text/plain"), ("k", "v")]
        let prepared = try PreparedMessage(sequence: 77, timestamp: 1_764_383_000_000_000_000, topic: "a.b",
                                           publisherPrincipal: "svc", publisherFingerprint: fingerprint,
                                           headers: headers, payload: payload)
        for replayed in [false, true] {
            var fast = ByteBuffer()
            try prepared.write(subscriptionID: 42, replayed: replayed, into: &fast, maxFrameSize: 1 << 20)
            let frame = Frame.message(Message(subscriptionID: 42, sequence: 77, timestamp: 1_764_383_000_000_000_000,
                                              topic: "a.b", publisherPrincipal: "svc", publisherFingerprint: fingerprint,
                                              headers: headers, payload: payload, replayed: replayed))
            #expect(fast == (try frame.encoded()))
            #expect(fast.readableBytes == prepared.frameSize)
            // The replay path's direct writer: the same bytes, after what the buffer held.
            var direct = ByteBuffer(bytes: [9, 9])
            try PreparedMessage.writeFrame(subscriptionID: 42, replayed: replayed, sequence: 77,
                                           timestamp: 1_764_383_000_000_000_000, topic: "a.b", publisherPrincipal: "svc",
                                           publisherFingerprint: fingerprint, headers: headers, payload: payload,
                                           into: &direct, maxFrameSize: 1 << 20)
            #expect(direct.readSlice(length: 2) == ByteBuffer(bytes: [9, 9]))
            #expect(direct == fast)
        }
        var refused = ByteBuffer(bytes: [5])
        #expect(throws: WireError.self) {
            try PreparedMessage.writeFrame(subscriptionID: 1, replayed: true, sequence: 77, timestamp: 1, topic: "a.b",
                                           publisherPrincipal: "svc", publisherFingerprint: fingerprint, headers: headers,
                                           payload: payload, into: &refused, maxFrameSize: prepared.frameLength - 1)
        }
        #expect(refused == ByteBuffer(bytes: [5]))
        var out = ByteBuffer()
        #expect(throws: WireError.self) {
            try prepared.write(subscriptionID: 1, into: &out, maxFrameSize: prepared.frameLength - 1)
        }
        #expect(out.readableBytes == 0)
    }

    @Test("headers keep order and repeated keys; facts for validation are recorded")
    func headers() throws {
        let fields = [HeaderField(key: "b", value: "1"), HeaderField(key: "a", value: "2"), HeaderField(key: "b", value: "3")]
        let headers = try Headers(fields)
        #expect(Array(headers) == fields)
        #expect(headers.count == 3)
        #expect(headers.contentBytes == 6)
        #expect(headers.keysAreValid)
        #expect(headers.values(for: "b") == ["1", "3"])
        #expect(!(try Headers([HeaderField(key: "bad key", value: "")])).keysAreValid)
        #expect(Headers.empty.isEmpty && Array(Headers.empty).isEmpty)
        // Decoding records the same facts as building.
        var input = try Frame.publish(Publish(publishID: 1, topic: "a", headers: headers, payload: ByteBuffer())).encoded()
        var decoder = RelayFrameDecoder(role: .broker, expectHandshake: false)
        guard case .publish(let decoded) = try decoder.decodeFrame(&input) else {
            Issue.record("expected PUB")
            return
        }
        #expect(decoded.headers == headers)
        #expect(decoded.headers.contentBytes == 6 && decoded.headers.keysAreValid)
        #expect(Array(decoded.headers) == fields)
    }

    @Test("fingerprints and session ids round-trip through bytes and hex")
    func identifiers() throws {
        let bytes = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        let fingerprint = try #require(CertificateFingerprint(bytes: bytes))
        #expect(fingerprint.bytes == bytes)
        #expect(CertificateFingerprint(hex: fingerprint.hex) == fingerprint)
        #expect(CertificateFingerprint(hex: fingerprint.hex.uppercased()) == fingerprint)
        #expect(fingerprint.hex.count == 64)
        #expect(CertificateFingerprint(hex: "zz" + fingerprint.hex.dropFirst(2)) == nil)
        #expect(CertificateFingerprint(bytes: bytes.dropLast()) == nil)
        let session = ProducerSessionID.random()
        #expect(!session.isNone)
        #expect(ProducerSessionID(bytes: session.bytes) == session)
        #expect(session.description.count == 32)
    }

    @Test("operation checks run in the spec's order and return the parsed topic or filter")
    func operationOrder() throws {
        let limits = PublishLimits(maxPayload: 4)
        let both = Publish(publishID: 1, topic: "a..b", payload: payload)  // bad topic and too large
        #expect(throws: OperationError.self) { try OperationValidation.validate(both, limits: limits) }
        do {
            _ = try OperationValidation.validate(both, limits: limits)
        } catch {
            #expect(error.code == .invalidTopic)
        }
        let ok = Publish(publishID: 1, topic: "orders.eu", headers: [("k", "v")], payload: ByteBuffer(bytes: [1]))
        #expect(try OperationValidation.validate(ok, limits: limits) == (try Topic("orders.eu")))
        let sub = Subscribe(subscriptionID: 1, filter: "orders.*.created", durableName: "worker-1", initialCredit: 1)
        #expect(try OperationValidation.validate(sub) == (try TopicFilter("orders.*.created")))
    }

    @Test("ERR closes the connection for codes below 0x0100 and refuses one operation from 0x0100, known or not")
    func errLevels() {
        #expect(ErrorFrame(rawCode: 0x00FE, message: "").closesConnection)
        #expect(ErrorFrame(code: .protocolViolation, message: "").closesConnection)
        #expect(!ErrorFrame(code: .subscriptionRevoked, subscriptionID: 3, message: "").closesConnection)
        #expect(ErrorFrame(rawCode: 0x0777, message: "").errorCode == nil)
        // Unknown codes are classified by range alone (§6 MUST): from 0x0100 an
        // unknown code refuses one operation; below it, it ends the connection.
        #expect(!ErrorFrame(rawCode: 0x0777, message: "").closesConnection)
        #expect(!ErrorFrame(rawCode: 0x0100, message: "").closesConnection)
        #expect(ErrorFrame(rawCode: 0x00FF, message: "").closesConnection)
        #expect(ErrorFrame(rawCode: 0x0042, message: "").errorCode == nil && ErrorFrame(rawCode: 0x0042, message: "").closesConnection)
    }

    @Test("end of input between frames is clean; inside a frame it is a protocol violation")
    func endOfInput() throws {
        var decoder = RelayFrameDecoder(role: .broker, expectHandshake: false)
        var empty = ByteBuffer()
        #expect(try decoder.decodeLast(buffer: &empty, seenEOF: true) == nil)
        var partial = ByteBuffer(bytes: [0, 0, 0, 10, 0x40])
        #expect(try decoder.decodeFrame(&partial) == nil)
        #expect(partial.readableBytes == 5)  // nothing consumed while waiting
    }

    @Test("a NIO pipeline decodes a batched write of many frames")
    func pipeline() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RelayFrameDecoder(role: .broker)))
        var batch = ByteBuffer()
        try Frame.hello(Hello()).encode(into: &batch)
        for i in 0..<100 {
            try Frame.publish(Publish(publishID: UInt64(i), topic: "t.\(i)", payload: payload)).encode(into: &batch)
        }
        try channel.writeInbound(batch)
        #expect(try channel.readInbound(as: Frame.self) == .hello(Hello()))
        for i in 0..<100 {
            #expect(try channel.readInbound(as: Frame.self) == .publish(Publish(publishID: UInt64(i), topic: "t.\(i)", payload: payload)))
        }
        #expect(try channel.finish().isClean)
    }
}

@Suite("Frame accumulator")
struct FrameAccumulatorTests {
    @Test("reads split at arbitrary points yield the same frames as one read")
    func arbitrarySplits() throws {
        var stream = ByteBuffer()
        var expected: [Frame] = [.hello(Hello(clientName: "acc"))]
        for i in 0..<50 {
            expected.append(.publish(Publish(publishID: UInt64(i), topic: "t.\(i)", headers: [("k", "\(i)")],
                                             payload: ByteBuffer(repeating: UInt8(i), count: i * 37))))
        }
        for frame in expected { try frame.encode(into: &stream) }
        var rng = SeededRandom(seed: 7)
        for _ in 0..<20 {
            var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker))
            var frames: [Frame] = []
            var input = stream
            while input.readableBytes > 0 {
                let n = Swift.min(input.readableBytes, Int(rng.next() % 300) + 1)
                let read = input.readSlice(length: n)
                accumulator.append(try #require(read))
                while let frame = try accumulator.next() { frames.append(frame) }
                #expect(accumulator.bufferedBytes < 2200)
            }
            #expect(frames == expected)
            try accumulator.finish()
        }
    }

    @Test("a read that completes a pending frame is not copied: the frames after it are slices of that read")
    func straddlingReadIsNotCopied() throws {
        var stream = ByteBuffer()
        for i in 0..<3 {
            try Frame.publish(Publish(publishID: UInt64(i), topic: "t", payload: ByteBuffer(repeating: 7, count: 100)))
                .encode(into: &stream)
        }
        let frameSize = stream.readableBytes / 3
        var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker, expectHandshake: false))
        // First read: the first frame and half of the second.
        guard let first = stream.readSlice(length: frameSize + frameSize / 2) else {
            Issue.record("the stream is shorter than a frame and a half")
            return
        }
        accumulator.append(first)
        #expect(try accumulator.next() != nil)
        #expect(try accumulator.next() == nil)
        // Second read: the rest of the second frame, then the whole third.
        var second = ByteBuffer()
        second.writeImmutableBuffer(stream)
        let secondBase = second.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        accumulator.append(second)
        guard case .publish(let middle) = try accumulator.next(), case .publish(let last) = try accumulator.next() else {
            Issue.record("expected two PUBs")
            return
        }
        #expect(middle.publishID == 1 && last.publishID == 2)
        let lastBase = last.payload.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        // The third frame starts right after the half frame that completed the second.
        #expect(lastBase == secondBase + UInt(frameSize - frameSize / 2) + UInt(frameSize - 100))
        #expect(try accumulator.next() == nil)
        #expect(accumulator.bufferedBytes == 0)
        try accumulator.finish()
    }

    @Test("end of input inside a frame is a protocol violation; oversize is refused from the length alone")
    func errors() throws {
        var accumulator = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker, expectHandshake: false))
        accumulator.append(ByteBuffer(bytes: [0, 0, 0, 10, 0x40, 0]))
        #expect(try accumulator.next() == nil)
        #expect(throws: WireError.self) { try accumulator.finish() }
        var big = FrameAccumulator(decoder: RelayFrameDecoder(role: .broker, expectHandshake: false))
        big.append(ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF]))
        #expect(throws: WireError(.frameTooLarge, "a frame announces 2147483647 bytes; the limit is 1114112")) {
            try big.next()
        }
    }
}

@Suite("Frame descriptions")
struct FrameDescriptionTests {
    @Test("descriptions name the frame and never print payload bytes")
    func noPayload() {
        let secret = ByteBuffer(string: "secret-payload")
        let pub = Frame.publish(Publish(publishID: 3, topic: "a.b", headers: [("auth", "secret-header")], payload: secret))
        #expect(pub.description == "PUB id=3 topic=\"a.b\" headers=1 payload=14B")
        #expect(!pub.description.contains("secret"))
        #expect(Frame.error(ErrorFrame(code: .subscriptionRevoked, subscriptionID: 4, message: "gone")).description
            == "ERR code=subscription_revoked sid=4 \"gone\"")
        #expect(Frame.publishError(PublishError(publishID: 1, rawCode: 0x0777, message: "")).description
            == "PUBERR id=1 code=0x777 \"\"")
    }
}
