import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// docs/security.md, "What triggers a reload": with `[reload] watch = true`,
/// a reload that read a half-written file is refused and the next poll
/// retries, so the last complete version wins without operator action; and
/// "Rotate the broker's server certificate": a certificate caught before its
/// key is refused, and the next poll applies both.
@Suite("relayd end to end: the file watcher retries after a half-written file", .serialized)
struct WatcherRetryTests {
    static let watchOn = "[reload]\nwatch = true"

    /// Rewrites `path` in place (truncate, then write), as `cat > file` does.
    static func writeInPlace(_ text: String, to path: String) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    static func append(_ text: String, to path: String) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    @Test("a CRL left half-written past the settle interval: that reload is refused, the session kept; completing the file revokes the session within about 2 s, without SIGHUP")
    func halfWrittenCRLIsRetried() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        let crl = try pki.writeCRL(revoking: [])
        try await withRelayd(pki: pki, extra: Self.watchOn, crl: crl, metrics: true) { relayd in
            let session = try await FrameClient.connect(port: relayd.port, pki: pki, as: bob)
            try await session.hello()

            let revoking = try DevelopmentPKI.crl(revoking: [bob.issued.serialNumber], signedBy: pki.ca.issued)
            let cut = revoking.utf8.count / 2
            let firstHalf = String(decoding: Array(revoking.utf8.prefix(cut)), as: UTF8.self)
            let secondHalf = String(decoding: Array(revoking.utf8.dropFirst(cut)), as: UTF8.self)
            try Self.writeInPlace(firstHalf, to: crl)
            let refusedEvent = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "refused" }
            let refused = try #require(refusedEvent, "the half-written CRL did not give a refused reload:\n\(relayd.log)")
            #expect(refused["trigger"] == "file_change" && refused["reason"]?.contains(crl) == true, "\(refused.fields)")
            #expect(try await session.publish("half.kept", count: 1).count == 1, "the refused reload touched bob's session")

            let completed = Date()
            try Self.append(secondHalf, to: crl)
            let error = try? await session.nextError(timeout: .seconds(20))
            let latency = Date().timeIntervalSince(completed)
            #expect(error?.errorCode == .certificateRevoked,
                    "bob's session was not revoked within 20 s of the CRL being completed: \(String(describing: error))")
            print("file watch: half-written CRL completed → revoked client got ERR: \(String(format: "%.3f s", latency))")
            // One poll (≤ 1 s) to see the change, 1 s for it to settle: about 2 s.
            #expect(latency >= 0.95 && latency <= 5, "completed CRL → ERR took \(latency) s (the watcher polls every 1 s and settles 1 s)")
            let appliedEvent = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            let applied = try #require(appliedEvent)
            #expect(applied["trigger"] == "file_change" && applied.line > refused.line)
            #expect(try await relayd.metric("relay_reload_failures_total") == 1)
            #expect(try await relayd.metric("relay_reloads_total") == 1)
        }
    }

    @Test("a new server certificate written before its key: the watcher's reload of the certificate alone is refused (key does not match), the key's arrival applies both; new handshakes get the new certificate, the old session goes on")
    func certificateBeforeKeyIsRetried() async throws {
        try await withRelayd(extra: Self.watchOn) { relayd in
            let pki = relayd.pki
            let before = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await before.hello()

            let renewed = try DevelopmentPKI.issue(
                .server(commonName: "localhost", sans: [.dns("localhost"), .ip("127.0.0.1")]), signedBy: pki.ca.issued)
            try Self.writeInPlace(renewed.certificatePEM, to: pki.server.certificate)
            let refusedEvent = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "refused" }
            let refused = try #require(refusedEvent, "the certificate without its key did not give a refused reload:\n\(relayd.log)")
            #expect(refused["reason"]?.contains("does not match") == true, "\(refused.fields)")
            // Still the old certificate meanwhile.
            let during = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await during.hello()
            #expect(try await during.peerLeaf()?.serialNumber == pki.server.issued.serialNumber)
            await during.close()

            try Self.writeInPlace(renewed.privateKeyPEM, to: pki.server.key)
            let appliedEvent = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            let applied = try #require(appliedEvent, "the key's arrival was not applied:\n\(relayd.log)")
            #expect(applied["trigger"] == "file_change" && applied.line > refused.line)
            let after = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await after.hello()
            #expect(try await after.peerLeaf()?.serialNumber == renewed.serialNumber)
            #expect(try await before.publish("cert.old", count: 1).count == 1)
            await after.close()
            await before.close()
        }
    }
}
