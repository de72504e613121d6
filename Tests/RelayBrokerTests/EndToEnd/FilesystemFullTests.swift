import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// The disk itself runs out: the store and the audit trail live on a small
/// tmpfs or loop-mounted ext4 image the test mounts (root only; CI runs as
/// root), so LMDB's pwrite and the audit trail's write get ENOSPC from the
/// kernel, far below the store's max_size. FullDiskTests covers the other
/// case, max_size reached.
///
/// What this cannot show: a real device's write-back errors (EIO at fsync
/// after the write was accepted); both file systems here fail the write itself.
@Suite("relayd end to end: the file system is full (ENOSPC)", .serialized)
struct FilesystemFullTests {
    @Test("ENOSPC in a store commit: PUB refused with a storage code, every acknowledged message readable (also after a restart), the audit trail counts its failed writes, and publishes succeed once space returns")
    func commitHitsENOSPC() async throws {
        let disk = try ScratchFilesystem(tmpfsSize: "8m")
        defer { disk.unmount() }  // also when a check throws
        let outcome = try await Self.fillUntilENOSPC(disk, label: "8 MiB tmpfs", filler: 2 << 20, payloadBytes: 64 << 10)
        #expect(outcome.storeFileBytes < 64 << 20, "the store outgrew its first map: this case is meant to stay inside it")
    }

    @Test("ENOSPC after the map grew past its first 64 MiB: the grow-and-retry path reports the disk error, does not loop, and the broker recovers")
    func mapGrowthHitsENOSPC() async throws {
        // relayd maps min(max_size, 64 MiB) first; an 80 MiB tmpfs fills after the map had to grow.
        let disk = try ScratchFilesystem(tmpfsSize: "80m")
        defer { disk.unmount() }
        let outcome = try await Self.fillUntilENOSPC(disk, label: "80 MiB tmpfs", filler: 4 << 20, payloadBytes: 256 << 10)
        // Without MDB_WRITEMAP LMDB writes pages with pwrite and never past the map, so a data file
        // above 64 MiB proves the map grew before the disk ran out.
        #expect(outcome.storeFileBytes > 64 << 20, "data.mdb is \(outcome.storeFileBytes) bytes: the map never grew")
    }

    @Test("the same on a loop-mounted ext4 image (block allocation and a journal, closer to a disk than tmpfs)")
    func ext4HitsENOSPC() async throws {
        let disk = try await ScratchFilesystem.ext4(megabytes: 24)
        defer { disk.unmount() }
        _ = try await Self.fillUntilENOSPC(disk, label: "24 MiB ext4", filler: 2 << 20, payloadBytes: 64 << 10)
    }

    struct Outcome { var storeFileBytes: Int }

    static let policy = """
    [[acl.rule]]
    name = "disk"
    publish = ["disk.>"]
    subscribe = [">"]
    """

    /// Puts relayd's store and audit trail on `disk` next to a
    /// `filler`-byte file, publishes `payloadBytes` messages until one is
    /// refused, checks the refusal and what was acknowledged, removes the
    /// filler, and checks that relayd works again.
    static func fillUntilENOSPC(_ disk: ScratchFilesystem, label: String, filler: Int, payloadBytes: Int) async throws -> Outcome {
        return try await withRelayd(acl: policy, metrics: true, start: false) { relayd in
            try relayd.replaceInConfig("path = \"\(relayd.dataDirectory)\"", with: "path = \"\(disk.file("data"))\"")
            // The audit key stays where the fixture's verify helpers look for it, and
            // repeated refusals are summarised every 100 ms, so the summary line's
            // write meets the full disk within the test instead of 10 s later.
            try FileManager.default.createDirectory(atPath: relayd.dataDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            try relayd.replaceInConfig("path = \"\(relayd.auditPath)\"",
                                       with: "path = \"\(relayd.auditPath)\"\nkey_file = \"\(relayd.auditKeyPath)\"\nrepeat_interval = \"100ms\"")
            // The trail goes on the tmpfs through a link at the fixture's path, where its helpers read it.
            try Data().write(to: URL(fileURLWithPath: disk.file("audit.jsonl")))
            try FileManager.default.createSymbolicLink(atPath: relayd.auditPath, withDestinationPath: disk.file("audit.jsonl"))
            try disk.writeFiller("filler", bytes: filler)
            try await relayd.start()

            // Publish one at a time until the first refusal.
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            var acked: [(id: UInt64, sequence: UInt64)] = []
            var refusal: PublishError?
            let attempts = UInt64(1 + (80 << 20) / payloadBytes * 2)
            for id in 1...attempts {
                switch try await publisher.publishFill(id, payloadBytes) {
                case .publishAck(let ack): acked.append((id, ack.sequence))
                case .publishError(let error): refusal = error
                case let other: throw BrokerTestError.refused("publish \(id): \(String(describing: other))")
                }
                if refusal != nil { break }
            }
            let refused = try #require(refusal, "\(acked.count) publishes of \(payloadBytes) bytes fit on a \(label)")
            print("ENOSPC (\(label)): \(acked.count) publishes acknowledged, then \(refused.errorCode?.name ?? String(refused.code)): \(refused.message)")
            #expect(refused.errorCode == .storageFailure || refused.errorCode == .storageFull,
                    "refused with \(refused.errorCode?.name ?? String(refused.code)): \(refused.message)")
            #expect(acked.count >= 5, "the store filled after only \(acked.count) publishes")
            #expect(relayd.process?.isRunning == true, "relayd died on ENOSPC:\n\(relayd.process?.transcript ?? "")")
            let storeFileBytes = (try? FileManager.default.attributesOfItem(atPath: disk.file("data/data.mdb"))[.size] as? Int) ?? 0

            // The audit trail is on the full disk too: a refused publish must be
            // recorded and cannot be. (A refused large pwrite can leave a few
            // blocks free on ext4: take them, so small writes fail as well.)
            try disk.fillRemaining("filler-rest")
            let denied = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await denied.hello()
            // Repeated refusals are aggregated (one full line, then a summary per
            // 100 ms interval), and the first few small lines still fit in the slack
            // of the file's last page: keep being refused until a write meets the
            // full disk, up to 2,000 refusals (~200 summary intervals).
            var failures: Double? = nil
            var refusals = 0
            for id in UInt64(1)...2_000 {
                guard case .publishError(let error) = try await denied.publishReply(id, "secret.\(id)"),
                      error.errorCode == .notAuthorized else {
                    throw BrokerTestError.refused("a publish outside the policy was not refused")
                }
                refusals += 1
                if id % 20 == 0 {
                    failures = try await relayd.metric("relay_audit_write_failures")
                    if (failures ?? 0) >= 1 { break }
                }
            }
            #expect((failures ?? 0) >= 1, "\(refusals) publish_denied events on a full disk, yet relay_audit_write_failures is \(String(describing: failures))")

            // Nothing acknowledged is lost, byte for byte.
            try await expectReadable(acked, payloadBytes: payloadBytes, relayd: relayd)

            // Space comes back: the next publish succeeds, and the trail writes again.
            try FileManager.default.removeItem(atPath: disk.file("filler"))
            try FileManager.default.removeItem(atPath: disk.file("filler-rest"))
            let nextID = UInt64(acked.count) + 100
            guard case .publishAck(let recovered) = try await publisher.publishFill(nextID, payloadBytes) else {
                Issue.record("publishing still fails after \(filler) bytes were freed")
                return Outcome(storeFileBytes: storeFileBytes)
            }
            acked.append((nextID, recovered.sequence))
            guard case .publishError = try await denied.publishReply(1000, "secret.after") else {
                throw BrokerTestError.refused("a publish outside the policy was not refused")
            }
            let written = await relayd.waitForAudit { $0.event == "publish_denied" && $0["topic"] == "secret.after" }
            #expect(written != nil, "the audit trail did not resume after space returned")
            await publisher.close(); await denied.close()

            // A crash after all this: the acknowledged messages are still there.
            try await relayd.restart()
            try await expectReadable(acked, payloadBytes: payloadBytes, relayd: relayd)
            // The trail stays one unbroken chain across the failed writes.
            try await relayd.verifyAuditChain()
            return Outcome(storeFileBytes: storeFileBytes)
        }
    }

    static func payload(_ id: UInt64, _ bytes: Int) -> ByteBuffer {
        var buffer = ByteBuffer(string: "disk-\(id)-")
        buffer.writeRepeatingByte(UInt8(ascii: "d"), count: bytes - buffer.readableBytes)
        return buffer
    }

    /// Reads `disk.>` from the start on a new connection: exactly the acknowledged messages, with their bytes.
    static func expectReadable(_ acked: [(id: UInt64, sequence: UInt64)], payloadBytes: Int, relayd: RelaydFixture) async throws {
        let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
        try await reader.hello()
        #expect(try await reader.subscribe(1, "disk.>", from: .earliest).isAccepted)
        let stored = try await reader.messages(acked.count, timeout: .seconds(60))
        #expect(stored.map(\.sequence) == acked.map(\.sequence))
        for (message, original) in zip(stored, acked) where message.payload != payload(original.id, payloadBytes) {
            Issue.record("message \(message.sequence) does not hold publish \(original.id)'s bytes")
        }
        #expect(try await reader.expectSilence(), "more is stored than was acknowledged")
        await reader.close()
    }
}

private extension FrameClient {
    /// One PUB of `bytes` on `disk.fill`; its PUBACK or PUBERR.
    func publishFill(_ id: UInt64, _ bytes: Int) async throws -> Frame? {
        try await send(.publish(Publish(publishID: id, topic: "disk.fill", payload: FilesystemFullTests.payload(id, bytes))))
        return try await nextReply(timeout: .seconds(60)) { frame in
            switch frame {
            case .publishAck(let ack): return ack.publishID == id
            case .publishError(let error): return error.publishID == id
            case .error: return true
            default: return false
            }
        }
    }
}
