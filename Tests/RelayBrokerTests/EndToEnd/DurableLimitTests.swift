import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// A durable that stored a cursor is kept until an operator deletes it
/// (`relayctl durable delete`). Nothing bounded how many one identity could
/// make: a client that SUBs durable names d1, d2, … and ACKs one message on
/// each grew the store and relayd for ever. `[limits] max_durables` bounds
/// them per durable owner (docs/configuration.md; Protocol/relay-v1.md §4.6).
@Suite("relayd end to end: durables per identity are bounded", .serialized)
struct DurableLimitTests {
    static let topic = "dur.t"

    /// Attaches `names` as durables of ``topic`` on one new connection as
    /// `files`, and moves each accepted one's cursor to the one stored
    /// message by an ACK (a PUB after the ACKs is the barrier: its PUBACK
    /// says every cursor is on disk). Returns the SUBACKs by name; the
    /// connection is closed.
    static func hold(_ relayd: RelaydFixture, as files: TLSTestPKI.Files, _ names: [String]) async throws -> [String: SubscribeAck] {
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
        try await client.hello()
        var buffer = client.channel.allocator.buffer(capacity: names.count * 96)
        for (index, name) in names.enumerated() {
            try buffer.writeFrame(.subscribe(Subscribe(subscriptionID: UInt32(index + 1), filter: topic, start: .earliest,
                                                       durableName: name, initialCredit: 1, ackMode: .cumulative)))
        }
        try await client.channel.writeAndFlush(buffer)
        var acks: [UInt32: SubscribeAck] = [:]
        var delivered: [UInt32: UInt64] = [:]
        while acks.count < names.count || delivered.count < acks.values.filter(\.isAccepted).count {
            switch try await client.next() {
            case .subscribeAck(let ack): acks[ack.subscriptionID] = ack
            case .message(let message): delivered[message.subscriptionID] = message.sequence
            case .none: throw BrokerTestError.refused("closed after \(acks.count) SUBACKs")
            case let other?: throw BrokerTestError.refused("unexpected \(other)")
            }
        }
        var last: (UInt32, UInt64)?
        var ackBuffer = client.channel.allocator.buffer(capacity: delivered.count * 24)
        for (id, sequence) in delivered.sorted(by: { $0.key < $1.key }) {
            if let previous = last { try ackBuffer.writeFrame(.ack(Ack(subscriptionID: previous.0, sequence: previous.1))) }
            last = (id, sequence)
        }
        try await client.channel.writeAndFlush(ackBuffer)
        if let last { try await client.acknowledgeDurably(subscriptionID: last.0, sequence: last.1) }
        await client.close()
        var byName: [String: SubscribeAck] = [:]
        for (index, name) in names.enumerated() { byName[name] = acks[UInt32(index + 1)] }
        return byName
    }

    /// One SUB of durable `name` on a new connection as `files`; the SUBACK.
    static func attach(_ relayd: RelaydFixture, as files: TLSTestPKI.Files, _ name: String) async throws -> SubscribeAck {
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
        try await client.hello()
        let ack = try await client.subscribe(1, topic, durable: name)
        await client.close()
        return ack
    }

    static func publishOne(_ relayd: RelaydFixture) async throws {
        let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await publisher.hello()
        _ = try await publisher.publish(topic, count: 1, firstID: 1)
        await publisher.close()
    }

    static func names(_ prefix: String, _ range: ClosedRange<Int>) -> [String] {
        range.map { "\(prefix)-\($0)-" + String(repeating: "n", count: 48) }
    }

    static func isTooManyDurables(_ ack: SubscribeAck?) -> Bool {
        ack?.code == RelayErrorCode.tooManyDurables.rawValue
    }

    @Test("the default limit: one identity's 1,000 durables with cursors are kept, the 1,001st new one is refused too_many_durables (what each costs is printed)")
    func defaultLimitAndCost() async throws {
        let relayd = try RelaydFixture(metrics: true)
        try await withRelayd(relayd) { relayd in
            let pid = try #require(relayd.process?.pid)
            try await Self.publishOne(relayd)
            // Warm-up: TLS, allocator, the cursors table's first pages.
            _ = try await Self.hold(relayd, as: relayd.pki.alice, Self.names("warm", 1...20))
            let rss = try #require(ProcessMemory.residentBytes(pid: pid))
            let file = relayd.dataDirectory + "/data.mdb"
            let size = { () -> Int? in (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil }
            let before = try #require(size(), "no \(file)")
            let held = try await Self.hold(relayd, as: relayd.pki.alice, Self.names("d", 1...980))
            let refusedEarly = held.values.first { !$0.isAccepted }
            #expect(refusedEarly == nil, "\(refusedEarly?.message ?? "")")
            let grownRSS = try #require(ProcessMemory.residentBytes(pid: pid)) - rss
            let after = try #require(size(), "no \(file)")
            let grownFile = after - before
            print("durables with cursors: 980 cost relayd +\(grownRSS / 980) bytes RSS and the store +\(grownFile / 980) bytes "
                + "each (data.mdb \(before) → \(after) bytes)")
            // Generous ceilings on the printed cost (measured: about 1.6 KB of RSS and
            // 0.7-1.8 KB of store per durable, wave 18), so a durable that began to
            // cost tens of kilobytes fails here instead of only printing it.
            #expect(grownRSS / 980 < 64 << 10, "RSS per durable with a cursor: \(grownRSS / 980) bytes")
            #expect(grownFile / 980 < 16 << 10, "store bytes per durable with a cursor: \(grownFile / 980)")

            // 1,000 held now (20 + 980): a new name is refused, an existing one re-attaches.
            let refused = try await Self.attach(relayd, as: relayd.pki.alice, "d-1001")
            #expect(Self.isTooManyDurables(refused), "the 1,001st durable was \(refused.code) \(refused.message)")
            #expect(refused.message.contains("relayctl durable delete") && refused.message.contains("max_durables")
                    && refused.message.contains("1000"), "\(refused.message)")
            let again = try await Self.attach(relayd, as: relayd.pki.alice, Self.names("d", 1...1)[0])
            #expect(again.isAccepted, "re-attaching a held durable at the limit: \(again.message)")
            let counted = try await relayd.metric("relay_operation_refusals_total{code=\"too_many_durables\"}")
            #expect(counted == 1)
        }
    }

    @Test("at max_durables = 3: re-attach is never refused; durables attached but not yet stored count; another identity and the same subject from another CA have budgets of their own")
    func limitPerOwner() async throws {
        let pki = try TLSTestPKI()
        let twins = try pki.sameWorkloadFromTwoCAs()
        let (ours, theirs, partnerCA) = (twins.ours, twins.theirs, twins.partnerCA)
        let bob = try pki.add("bob", .client(commonName: "bob"))
        let relayd = try RelaydFixture(pki: pki, extra: "[limits]\nmax_durables = 3", metrics: true)
        relayd.clientCAs = [pki.ca.certificate, partnerCA.certificate]
        try relayd.writeConfig(extra: "[limits]\nmax_durables = 3")
        try await withRelayd(relayd) { relayd in
            try await Self.publishOne(relayd)
            let held = try await Self.hold(relayd, as: ours, ["a", "b", "c", "d"])
            let threeHeld = ["a", "b", "c"].allSatisfy { held[$0]?.isAccepted == true }
            #expect(threeHeld, "\(held)")
            #expect(Self.isTooManyDurables(held["d"]), "the 4th durable: \(String(describing: held["d"]))")
            #expect(held["d"]?.message.contains("at most 3") == true, "\(held["d"]?.message ?? "")")

            // Attached, not yet acknowledged: the three count while attached,
            // so a second connection cannot add a fourth meanwhile.
            let bobHeld = try await Self.hold(relayd, as: bob, ["x"])
            #expect(bobHeld["x"]?.isAccepted == true)
            let pending = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: bob)
            try await pending.hello()
            let y = try await pending.subscribe(1, Self.topic, credit: 0, durable: "y")
            let z = try await pending.subscribe(2, Self.topic, credit: 0, durable: "z")
            #expect(y.isAccepted && z.isAccepted)
            let fourth = try await Self.attach(relayd, as: bob, "w")
            #expect(Self.isTooManyDurables(fourth), "a durable beside 1 stored and 2 attached: \(fourth.code) \(fourth.message)")
            await pending.close()

            // Same subject and SPIFFE ID, another CA: another owner, three of its own.
            let partner = try await Self.hold(relayd, as: theirs, ["a", "b", "c", "d"])
            let partnerHeld = ["a", "b", "c"].allSatisfy { partner[$0]?.isAccepted == true }
            #expect(partnerHeld, "\(partner)")
            #expect(Self.isTooManyDurables(partner["d"]))

            // At the limit, each held durable re-attaches.
            for name in ["a", "b", "c"] {
                let again = try await Self.attach(relayd, as: ours, name)
                #expect(again.isAccepted, "re-attaching \(name) at the limit: \(again.message)")
            }
            let counted = try await relayd.metric("relay_operation_refusals_total{code=\"too_many_durables\"}")
            #expect(counted == 3)
        }
    }

    @Test("the count is the store's: after a SIGKILL and a restart the 4th durable is still refused; a lower limit keeps existing durables and refuses new ones")
    func countSurvivesRestartAndLowerLimit() async throws {
        let relayd = try RelaydFixture(extra: "[limits]\nmax_durables = 3")
        try await withRelayd(relayd) { relayd in
            try await Self.publishOne(relayd)
            let held = try await Self.hold(relayd, as: relayd.pki.alice, ["a", "b", "c"])
            let allHeld = held.values.allSatisfy { $0.isAccepted }
            #expect(allHeld)
            await relayd.kill()
            try await relayd.start()
            let afterRestart = try await Self.attach(relayd, as: relayd.pki.alice, "d")
            #expect(Self.isTooManyDurables(afterRestart), "\(afterRestart.code) \(afterRestart.message)")

            // Lowered below what alice holds: her three keep working, nothing new.
            let status = await relayd.terminate()
            #expect(status == 0)
            try relayd.writeConfig(extra: "[limits]\nmax_durables = 2")
            try await relayd.start()
            for name in ["a", "b", "c"] {
                let again = try await Self.attach(relayd, as: relayd.pki.alice, name)
                #expect(again.isAccepted, "\(name) after the limit was lowered: \(again.message)")
            }
            let new = try await Self.attach(relayd, as: relayd.pki.alice, "e")
            #expect(Self.isTooManyDurables(new) && new.message.contains("at most 2"),
                    "\(new.code) \(new.message)")
        }
    }
}
