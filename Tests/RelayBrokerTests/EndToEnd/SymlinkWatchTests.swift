import Foundation
import NIOCore
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

@Suite("relayd end to end: symlinked and rewritten TLS files are watched", .serialized)
struct SymlinkWatchTests {
    @Test("a CRL mounted as a Kubernetes ..data symlink: swapping it cuts the revoked session without SIGHUP and refuses its reconnect")
    func kubernetesDataSwapRevokes() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        let empty = try DevelopmentPKI.crl(revoking: [], signedBy: pki.ca.issued)
        var volume = try ProjectedVolume(directory: pki.directory.file("crl-volume"), files: ["crl.pem": empty])
        try await withRelayd(pki: pki, crl: volume.path("crl.pem")) { relayd in
            let alice = try await FrameClient.connect(port: relayd.port, pki: pki)
            try await alice.hello()
            let session = try await FrameClient.connect(port: relayd.port, pki: pki, as: bob)
            try await session.hello()

            let swapped = Date()
            try volume.publish(["crl.pem": try DevelopmentPKI.crl(revoking: [bob.issued.serialNumber], signedBy: pki.ca.issued)])
            let error = try await session.nextError(timeout: .seconds(30))
            #expect(error?.errorCode == .certificateRevoked)
            #expect(await session.waitUntilClosed())
            print("file watch: ..data swapped → revoked client got ERR: \(seconds(from: swapped, to: Date()))")
            let reload = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            #expect(reload?["trigger"] == "file_change")

            // The reconnect fails in the handshake (revoked, X509 error 23).
            let again = try await FrameClient.connect(port: relayd.port, pki: pki, as: bob)
            let helloAgain: () async throws -> sending Void = { try await again.hello() }
            await #expect(throws: (any Error).self, performing: helloAgain)
            let refused = await relayd.waitForAudit {
                $0.event == "connection_refused" && $0["cause"] == "certificate_revoked"
            }
            #expect(refused != nil)
            // Alice, not revoked, is untouched.
            #expect(try await alice.publish("still.here", count: 1).count == 1)
            await alice.close()
        }
    }

    @Test("a CRL rewritten in place with its old modification time restored still triggers a reload")
    func inPlaceRewriteWithSameMtime() async throws {
        let pki = try TLSTestPKI()
        let bob = try pki.add("bob", .client(commonName: "bob"))
        let crl = try pki.writeCRL(revoking: [])
        // A whole-second timestamp, so restoring it below is exact.
        let before = Date(timeIntervalSince1970: 1_780_000_000)
        try FileManager.default.setAttributes([.modificationDate: before], ofItemAtPath: crl)
        try await withRelayd(pki: pki, crl: crl) { relayd in
            let session = try await FrameClient.connect(port: relayd.port, pki: pki, as: bob)
            try await session.hello()

            // rsync -t / cp -p style: new bytes, the old timestamp.
            let revoking = try DevelopmentPKI.crl(revoking: [bob.issued.serialNumber], signedBy: pki.ca.issued)
            let handle = try #require(FileHandle(forWritingAtPath: crl))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(revoking.utf8))
            try handle.close()
            try FileManager.default.setAttributes([.modificationDate: before], ofItemAtPath: crl)
            #expect(try FileManager.default.attributesOfItem(atPath: crl)[.modificationDate] as? Date == before)

            let error = try await session.nextError(timeout: .seconds(30))
            #expect(error?.errorCode == .certificateRevoked)
            #expect(await session.waitUntilClosed())
        }
    }
}
