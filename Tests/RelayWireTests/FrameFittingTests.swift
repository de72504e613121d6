import NIOCore
import RelayCore
@testable import RelayWire
import Testing

/// `Frame.shorteningMessage(toFit:)`: the broker's stand-in for an answer
/// whose human-readable message makes it larger than the peer's limit (§2).
@Suite("shortening a frame's message to a frame limit")
struct FrameFittingTests {
    static func length(_ frame: Frame) throws -> Int { try frame.encoded().readableBytes - 4 }

    @Test("a message is cut at a character boundary, ends in …, and the frame is exactly within the limit")
    func cutAtCharacterBoundary() throws {
        // "é" is 2 bytes: a cut in the middle of one must drop it whole.
        // ERR: a client decoder accepts it as its first frame.
        let frame = Frame.error(ErrorFrame(code: .protocolViolation, message: String(repeating: "é", count: 1_000)))
        for limit in [1_024, 1_025, 1_026] {
            let shortened = try #require(frame.shorteningMessage(toFit: limit))
            let size = try Self.length(shortened)
            #expect(size <= limit && size >= limit - 1, "limit \(limit): \(size)")
            let message = try #require(shortened.humanMessage)
            #expect(message.hasSuffix("…") && message.dropLast().allSatisfy { $0 == "é" })
            // It still decodes as well-formed UTF-8.
            var decoder = RelayFrameDecoder(role: .client)
            var input = try shortened.encoded()
            #expect(try decoder.decodeFrame(&input) == shortened)
        }
    }

    @Test("a frame that fits is unchanged; one without a message, or too large without it, gives nil")
    func unchangedOrNil() throws {
        let small = Frame.publishError(PublishError(publishID: 1, code: .invalidTopic, message: "short"))
        #expect(small.shorteningMessage(toFit: 1_024) == small)
        #expect(Frame.ping(token: 1).shorteningMessage(toFit: 1_024) == nil)
        var body = ByteBuffer()
        body.writeBytes([UInt8](repeating: 0x20, count: 2_000))
        let reply = Frame.adminReply(AdminReply(requestID: 1, message: "x", body: body))
        #expect(reply.shorteningMessage(toFit: 1_024) == nil)
    }
}
