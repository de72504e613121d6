import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Issue 18 item 4: a store that cannot commit is reported as such. The
/// store lives on a real 8 MiB tmpfs (ScratchFilesystem; root only, as CI
/// runs) that a filler file takes most of, so LMDB's writes get ENOSPC from
/// the kernel: the refusal is logged and counted in
/// `relay_storage_failures_total{code}`, apart from policy refusals, and
/// `/readyz` answers 503 with the reason until a commit succeeds again.
@Suite("relayd end to end: storage failures and /readyz", .serialized)
struct StoreHealthTests {
    static let policy = """
    [[acl.rule]]
    name = "disk"
    publish = ["disk.>"]
    subscribe = [">"]
    """

    @Test("ENOSPC: the storage failure is logged and counted apart from policy denials, /readyz is 503 with the reason, gauges show the limit and the free space, and all recover after a commit succeeds")
    func fullFilesystem() async throws {
        let disk = try ScratchFilesystem(tmpfsSize: "8m")
        defer { disk.unmount() }
        try await withRelayd(acl: Self.policy, metrics: true, start: false) { relayd in
            try relayd.replaceInConfig("path = \"\(relayd.dataDirectory)\"", with: "path = \"\(disk.file("data"))\"")
            try disk.writeFiller("filler", bytes: 2 << 20)
            try await relayd.start()
            let ready = try await relayd.readyz()
            #expect(ready.status == 200, "not ready at start: \(ready)")
            // An alert on these needs the series before the first failure:
            // both codes are exported at 0 from the start (they were missing).
            for code in ["storage_full", "storage_failure"] {
                let atStart = try await relayd.metric("relay_storage_failures_total{code=\"\(code)\"}")
                #expect(atStart == 0, "relay_storage_failures_total{code=\"\(code)\"} at start: \(String(describing: atStart))")
            }
            for limit in ["max_preauth_connections", "max_preauth_per_address"] {
                let atStart = try await relayd.metric("relay_preauth_refused_total{limit=\"\(limit)\"}")
                #expect(atStart == 0, "relay_preauth_refused_total{limit=\"\(limit)\"} at start: \(String(describing: atStart))")
            }

            // The limit and free-space gauges (sampled every 5 s: polled with a deadline).
            let limit = await eventuallyValue(timeout: 15, every: 0.2) { try? await relayd.metric("relay_storage_max_bytes") }
            #expect(limit == Double(1 << 30), "relay_storage_max_bytes is \(String(describing: limit)), the config says 1GiB")
            let free = await eventuallyValue(timeout: 15, every: 0.2) { try? await relayd.metric("relay_storage_filesystem_free_bytes") }
            let freeBytes = try #require(free, "no relay_storage_filesystem_free_bytes sample")
            #expect(freeBytes > 0 && freeBytes < Double(8 << 20), "free space \(freeBytes) on an 8 MiB tmpfs")

            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            // One policy denial first: it must not show up as a storage failure.
            guard case .publishError(let denied) = try await publisher.publishReply(1, "secret.x"), denied.errorCode == .notAuthorized else {
                throw BrokerTestError.refused("a publish outside the policy was not refused")
            }
            var refusal: PublishError?
            for id in UInt64(2)...400 {
                guard case .publishError(let error) = try await publisher.publishLarge(id) else { continue }
                refusal = error
                break
            }
            let refused = try #require(refusal, "400 publishes of 64 KiB fit on an 8 MiB tmpfs")
            let code = try #require(refused.errorCode, "PUBERR code \(refused.code)")
            #expect([RelayErrorCode.storageFailure, .storageFull].contains(code), "refused with \(code.name): \(refused.message)")

            let counted = try await relayd.metric("relay_storage_failures_total{code=\"\(code.name)\"}")
            #expect(counted == 1, "relay_storage_failures_total{code=\"\(code.name)\"} is \(String(describing: counted)) after one refused commit")
            let metrics = try await relayd.scrapeMetrics()
            #expect(!metrics.contains("relay_storage_failures_total{code=\"not_authorized\"}"), "a policy denial counted as a storage failure")
            let notReady = try await relayd.readyz()
            #expect(notReady.status == 503, "/readyz while the store cannot commit: \(notReady)")
            #expect(notReady.body.contains(code.name), "the 503 does not say why: \(notReady.body)")
            let logged = await relayd.waitForLogLine { $0.contains("the store cannot commit") && $0.contains("code=\(code.name)") }
            #expect(logged, "no log line names the storage failure")

            // Space returns: the next commit succeeds and the broker is ready again.
            try FileManager.default.removeItem(atPath: disk.file("filler"))
            guard case .publishAck = try await publisher.publishLarge(1000) else {
                throw BrokerTestError.refused("publishing still fails after the filler was removed")
            }
            let readyAgain = try await relayd.readyz()
            #expect(readyAgain.status == 200, "/readyz after a successful commit: \(readyAgain)")
            let recoveryLogged = await relayd.waitForLogLine { $0.contains("the store commits again") }
            #expect(recoveryLogged)
            await publisher.close()
        }
    }

    @Test("the store's map is full (max_size): storage_full is counted and /readyz is 503 until retention frees space and a commit succeeds")
    func mapFull() async throws {
        try await withRelayd(acl: Self.policy, extra: """
        [[retention]]
        filter = "disk.>"
        max_age = "3s"
        """, metrics: true, start: false) { relayd in
            try relayd.replaceInConfig("max_size = \"1GiB\"", with: "max_size = \"2MiB\"")
            try await relayd.start()
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await publisher.hello()
            var refused = false
            for id in UInt64(1)...200 {
                if case .publishError(let error) = try await publisher.publishLarge(id) {
                    #expect(error.errorCode == .storageFull, "\(error)")
                    refused = true
                    break
                }
            }
            #expect(refused, "200 publishes of 64 KiB fit in a 2 MiB store")
            #expect(try await relayd.metric("relay_storage_failures_total{code=\"storage_full\"}") == 1)
            let notReady = try await relayd.readyz()
            #expect(notReady.status == 503 && notReady.body.contains("storage_full"), "\(notReady)")
            // Retention (max_age 3 s) frees the space; a publish then commits (polled: the pruner runs on its own clock).
            let committed = await eventually(timeout: 20, every: 0.5) {
                guard case .publishAck = try? await publisher.publishLarge(5000) else { return false }
                return true
            }
            #expect(committed, "no publish committed after retention")
            let readyAgain = try await relayd.readyz()
            #expect(readyAgain.status == 200, "\(readyAgain)")
            await publisher.close()
        }
    }
}

extension FrameClient {
    /// One PUB of 64 KiB on `disk.fill`; its PUBACK or PUBERR.
    func publishLarge(_ id: UInt64) async throws -> Frame? {
        var payload = ByteBuffer(string: "disk-\(id)-")
        payload.writeRepeatingByte(UInt8(ascii: "d"), count: (64 << 10) - payload.readableBytes)
        try await send(.publish(Publish(publishID: id, topic: "disk.fill", payload: payload)))
        return try await nextReply(timeout: .seconds(60)) { frame in
            switch frame {
            case .publishAck(let ack): return ack.publishID == id
            case .publishError(let error): return error.publishID == id
            default: return false
            }
        }
    }
}
