import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import RelayWire
import Testing

/// The delivery turn's rotation inside one connection, with a real relayd
/// (docs/testing.md, "The delivery turn: only subscriptions with work, taken
/// in turn"; the state-machine tests are `DeliveryTurnRotationTests`). A
/// durable subscription replays a sparse backlog: 300,000 records, of which
/// only the last five match it, so its replay is five store reads of at
/// most 65,536 records, each a turn that sends nothing. On the same
/// connection twenty live subscriptions each hold a buffered message
/// (credit 0) when one write brings the durable's SUB and their CREDITs.
/// Each turn puts a subscription it leaves with work at the back: the live
/// messages go out at the next turn, long before the replay reaches its
/// matches. A turn that always began with the same subscription let a
/// scanner ahead of them in the table's order hold them until its end.
@Suite("relayd end to end: one connection's live subscriptions are not held behind its sparse replay", .serialized)
struct DeliveryTurnRotationEndToEndTests {
    static let acl = RelaydFixture.allowAll + "\nadmin = [\"read\"]\n"
    static let noise = 300_000
    static let hits = 5
    static let live: ClosedRange<UInt32> = 1...20
    static let scanner: UInt32 = 100

    /// Appends the backlog straight into the stopped broker's store: noise
    /// on `rot.noise`, then the scanner's matches on `rot.hit.x`. The
    /// scanner's filter is a wildcard (`rot.hit.*`): a literal topic is read
    /// through the store's topic index, without a scan.
    static func writeBacklog(_ directory: String) async throws {
        let store = try MessageStore.open(StoreConfiguration(directory: directory))
        defer { store.close() }
        let publisher = PublisherStamp(principal: "backlog", fingerprint: CertificateFingerprint(w0: 1, w1: 2, w2: 3, w3: 4))
        let noise = try Topic("rot.noise"), hit = try Topic("rot.hit.x")
        var batches = stride(from: 0, to: Self.noise, by: 20_000).map { start in
            (start..<min(start + 20_000, Self.noise)).map { _ in
                NewMessage(topic: noise, payload: ByteBuffer(string: "n"), publisher: publisher)
            }
        }
        batches.append((0..<Self.hits).map { i in NewMessage(topic: hit, payload: ByteBuffer(string: "hit \(i)"), publisher: publisher) })
        for batch in batches {
            for result in await store.append(batch) { _ = try result.get() }
        }
    }

    private struct Listed: Decodable {
        var items: [Row]
        struct Row: Decodable { var subscriptionId: UInt32; var bufferedMessages: Int }
    }

    /// The subscriptions listing (`relayctl subscriptions`): id → buffered messages.
    static func buffered(_ admin: FrameClient, requestID: UInt32) async throws -> [UInt32: Int] {
        try await admin.send(.admin(AdminRequest(requestID: requestID, operation: "subscriptions", body: ByteBuffer())))
        let reply = try await admin.nextReply { frame in
            if case .adminReply(let reply) = frame { return reply.requestID == requestID }
            return false
        }
        guard case .adminReply(let answer) = reply, answer.code == 0 else {
            throw BrokerTestError.refused("subscriptions: \(String(describing: reply))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let listed = try decoder.decode(Listed.self, from: Data(String(buffer: answer.body).utf8))
        return Dictionary(listed.items.map { ($0.subscriptionId, $0.bufferedMessages) }, uniquingKeysWith: +)
    }

    @Test("twenty live subscriptions with a buffered message each and a durable replaying 300,000 records of which the last 5 match, on one connection: every live MSG comes before the replay's last MSG")
    func liveNotBehindSparseReplay() async throws {
        try await withRelayd(acl: Self.acl, durability: "async") { relayd in
            #expect(await relayd.terminate() == 0)
            try await Self.writeBacklog(relayd.dataDirectory)
            try await relayd.start()

            let subscriber = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await subscriber.hello()
            for id in Self.live {
                let ack = try await subscriber.subscribe(id, "rot.live.\(id)", from: .latest, credit: 0)
                #expect(ack.isAccepted, "SUB \(id): \(ack.message)")
            }
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            for id in Self.live {
                _ = try await publisher.publish("rot.live.\(id)", count: 1, firstID: UInt64(id)) { _ in "live \(id)" }
            }
            // The event: each live subscription holds its message (no credit yet).
            let admin = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await admin.hello()
            var request: UInt32 = 0
            let held = try await eventually(timeout: 10) {
                request += 1
                let listed = try await Self.buffered(admin, requestID: request)
                return Self.live.allSatisfy { listed[$0] == 1 }
            }
            #expect(held, "the live messages were not all buffered")

            // One write: the durable's SUB first, then every live subscription's CREDIT.
            var frames = subscriber.channel.allocator.buffer(capacity: 1_024)
            try frames.writeFrame(.subscribe(Subscribe(subscriptionID: Self.scanner, filter: "rot.hit.*", start: .earliest,
                                                       durableName: "scan", initialCredit: 100, ackMode: .cumulative)))
            for id in Self.live { try frames.writeFrame(.credit(Credit(subscriptionID: id, credit: 10))) }
            try await subscriber.channel.writeAndFlush(frames)

            // The order the MSGs arrive in, until the replay's last one.
            var order: [UInt32] = []
            while order.filter({ $0 == Self.scanner }).count < Self.hits {
                guard let frame = try await subscriber.next(timeout: .seconds(30)) else {
                    throw BrokerTestError.refused("closed after \(order)")
                }
                if case .message(let message) = frame { order.append(message.subscriptionID) }
            }
            let lastReplayed = order.lastIndex(of: Self.scanner) ?? order.count
            let before = Set(order[..<lastReplayed].filter { $0 != Self.scanner })
            let late = Self.live.filter { !before.contains($0) }
            #expect(late.isEmpty, "live subscriptions whose MSG did not come before the replay's last one: \(late) (order: \(order))")
            await admin.close()
            await publisher.close()
            await subscriber.close()
        }
    }
}
