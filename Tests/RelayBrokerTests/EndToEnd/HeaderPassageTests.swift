import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// The publisher's header block reaches subscribers byte for byte
/// (Protocol/relay-v1.md §3: order and repeated keys are kept), whether the
/// MSG is built from the PUB just committed or read back from the store.
@Suite("relayd end to end: the header block passes verbatim", .serialized)
struct HeaderPassageTests {
    /// Repeated keys out of order, an empty value, values that are valid
    /// UTF-8 but easy to normalise or repair (a decomposed é next to a
    /// precomposed one, CR LF, NUL, U+FFFE, a 4-byte scalar), and a key of
    /// the longest allowed length.
    static let fields: [HeaderField] = [
        HeaderField(key: "trace", value: "b"),
        HeaderField(key: "Trace", value: ""),
        HeaderField(key: "trace", value: "a"),
        HeaderField(key: "text", value: "caf\u{65}\u{301} caf\u{E9}\r\n\u{0}\u{FFFE}\u{1F600}"),
        HeaderField(key: String(repeating: "k", count: 255), value: String(repeating: "v", count: 4_000)),
        HeaderField(key: "trace", value: "b"),
    ]

    @Test("a PUB's header block arrives byte-identical live and on replay")
    func headerBlockIsVerbatim() async throws {
        try await withRelayd { relayd in
            let sent = try Headers(Self.fields)
            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            #expect(try await subscriber.subscribe(1, "h.t", from: .latest).isAccepted)
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            try await publisher.send(.publish(Publish(publishID: 1, topic: "h.t", headers: sent, payload: ByteBuffer(string: "p"))))
            let live = try #require(try await subscriber.messages(1).first)
            #expect(!live.replayed)
            #expect(live.headers.count == sent.count)
            #expect(Array(buffer: live.headers.encoded) == Array(buffer: sent.encoded))
            #expect(Array(live.headers) == Self.fields)

            #expect(try await subscriber.subscribe(2, "h.t", from: .earliest).isAccepted)
            let replayed = try #require(try await subscriber.messages(1).first)
            #expect(replayed.replayed && replayed.sequence == live.sequence)
            #expect(replayed.headers.count == sent.count)
            #expect(Array(buffer: replayed.headers.encoded) == Array(buffer: sent.encoded))
            await publisher.close(); await subscriber.close()
        }
    }
}
