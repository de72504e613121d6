import Foundation
import NIOCore
import RelayTestSupport
import RelayWire
import Testing

/// configuration.md `[[retention]]`, storage.md "Full store and retention":
/// a running relayd's pruner (every second) applies `max_messages`,
/// `max_bytes` and `max_age` per topic, the first matching rule wins, and a
/// topic no rule matches is kept. Seen the way a client sees the store: a
/// replay from earliest.
@Suite("relayd end to end: retention", .serialized)
struct RetentionEndToEndTests {
    static let rules = """
    [[retention]]
    filter = "ret.count.>"
    max_messages = 3

    [[retention]]
    filter = "ret.bytes.>"
    max_bytes = "1KiB"

    [[retention]]
    filter = "ret.age.>"
    max_age = "3s"

    [[retention]]
    filter = "ret.>"
    max_messages = 5
    """

    @Test("max_messages and max_bytes keep each topic's newest messages, the first matching rule wins, an unmatched topic keeps everything")
    func countAndBytes() async throws {
        try await withRelayd(extra: Self.rules) { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let hundred = String(repeating: "x", count: 96)
            _ = try await publisher.publish("ret.count.a.data", count: 10) { "c\($0)" }
            _ = try await publisher.publish("ret.count.b.data", count: 2, firstID: 11) { "b\($0)" }
            _ = try await publisher.publish("ret.bytes.a.data", count: 20, firstID: 13) { String(format: "%04d", $0) + hundred }
            _ = try await publisher.publish("ret.other.data", count: 10, firstID: 33) { "o\($0)" }
            _ = try await publisher.publish("keep.a.data", count: 10, firstID: 43) { "k\($0)" }

            // The pruner runs every second: wait (with a deadline) for its result.
            let counted = await Self.waitForStored(relayd, "ret.count.a") { $0.count == 3 }
            #expect(counted == ["c7", "c8", "c9"], "ret.count.a kept \(String(describing: counted))")
            // Per topic: the other topic under the same rule is under its limit.
            let fewer = try await Self.stored(relayd, "ret.count.b")
            #expect(fewer == ["b0", "b1"])
            // "ret.count.>" comes before "ret.>", so ret.count.a kept 3, not 5; ret.other gets 5.
            let other = await Self.waitForStored(relayd, "ret.other") { $0.count == 5 }
            #expect(other == ["o5", "o6", "o7", "o8", "o9"], "ret.other kept \(String(describing: other))")

            // 20 records of 100 payload bytes under 1 KiB: the newest ones stay, fewer than 10.
            let bytes = await Self.waitForStored(relayd, "ret.bytes.a") { $0.count < 10 }
            let kept = try #require(bytes, "ret.bytes.a was not pruned below 10 of 20 records of 100 bytes")
            let newest = (20 - kept.count..<20).map { String(format: "%04d", $0) + hundred }
            let keptIDs = kept.map { $0.prefix(4) }
            #expect(!kept.isEmpty && kept == newest, "ret.bytes.a kept \(keptIDs)")
            let keptBytes = kept.reduce(0) { $0 + $1.utf8.count }
            #expect(keptBytes <= 1024)

            // No rule matches keep.a: nothing is deleted.
            let unmatched = try await Self.stored(relayd, "keep.a")
            #expect(unmatched.count == 10)
            await publisher.close()
        }
    }

    @Test("max_age 3s: messages older than 3 s are deleted by the running relayd, newer ones and other topics stay")
    func maxAge() async throws {
        try await withRelayd(extra: Self.rules) { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            let beforePublishing = Date()
            _ = try await publisher.publish("ret.age.a.data", count: 5) { "old\($0)" }
            _ = try await publisher.publish("keep.age.data", count: 2, firstID: 6) { "kept\($0)" }
            // 3 s, not 1 s: under a full parallel run this replay once came more than a
            // second after the publishes, and the pruner had already done its work.
            #expect(try await Self.stored(relayd, "ret.age.a").count == 5)

            let emptied = await Self.waitForStored(relayd, "ret.age.a", timeout: 15) { $0.isEmpty }
            #expect(emptied == [], "messages older than max_age are still stored: \(String(describing: emptied))")
            // Never before they were max_age old.
            #expect(Date().timeIntervalSince(beforePublishing) >= 3.0)

            _ = try await publisher.publish("ret.age.a.data", count: 2, firstID: 8) { "new\($0)" }
            #expect(try await Self.stored(relayd, "ret.age.a") == ["new0", "new1"])
            #expect(try await Self.stored(relayd, "keep.age") == ["kept0", "kept1"])
            await publisher.close()
        }
    }

    /// The payloads stored on `<base>.data`, oldest first: a replay of
    /// `<base>.>` on a new connection up to a marker on `<base>.marker`
    /// (retention is per topic, so markers never count against the data topic).
    static func stored(_ relayd: RelaydFixture, _ base: String) async throws -> [String] {
        let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await reader.hello()
        let stored = try await reader.storedMessages("\(base).>", marker: "\(base).marker")
        await reader.close()
        return stored.filter { $0.topic == "\(base).data" }.map(payloadString)
    }

    /// `stored` until `condition` holds (the pruner runs on its own clock);
    /// nil after `timeout` seconds.
    static func waitForStored(_ relayd: RelaydFixture, _ topic: String, timeout: Double = 10,
                              _ condition: ([String]) -> Bool) async -> [String]? {
        await eventuallyValue(timeout: timeout, every: 0.1) { () -> [String]? in
            guard let payloads = try? await stored(relayd, topic), condition(payloads) else { return nil }
            return payloads
        }
    }
}
