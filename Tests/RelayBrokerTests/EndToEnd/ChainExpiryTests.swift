import Foundation
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// A live session ends when any certificate of its verified chain expires,
/// not only the leaf (wave-14 attack run). A leaf may outlive its issuing
/// CA: OpenSSL refuses such a chain at every handshake once the CA has
/// expired, so a session opened just before must not keep going.
@Suite("relayd end to end: expiry of a CA in the client's chain", .serialized)
struct ChainExpiryTests {
    @Test("an intermediate CA that expires during the session closes it with certificate_expired, naming the CA")
    func intermediateExpiresDuringSession() async throws {
        try await withRelayd { relayd in
            // Issued after relayd started so the CA's whole lifetime is left for the session.
            var request = CertificateRequest(subject: [[NameAttribute("CN", "Short Intermediate")]], isCA: true)
            request.notAfter = Date().addingTimeInterval(12)
            let intermediate = try relayd.pki.add("int-short", request)
            // The leaf itself is valid for a year.
            let leaf = try relayd.pki.addChainedClient("dave", chain: [intermediate])
            let caNotAfter = try Identity(pem: intermediate.issued.certificatePEM).notAfter
            #expect(try Identity(pem: leaf.issued.certificatePEM).notAfter > caNotAfter.addingTimeInterval(86_400))
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: leaf)
            try await client.hello()
            #expect(try await client.subscribe(1, "e.>", from: .latest).isAccepted)
            #expect(Date() < caNotAfter, "the session should have started before the intermediate expired")

            let error = try #require(try await client.nextError(timeout: .seconds(60)))
            let received = Date()
            #expect(error.errorCode == .certificateExpired)
            #expect(error.message.contains("CN=Short Intermediate"), "\(error.message)")
            #expect(received >= caNotAfter, "the session was closed before the intermediate expired")
            #expect(received < caNotAfter.addingTimeInterval(30), "the session outlived its intermediate CA")
            #expect(await client.waitUntilClosed())

            let endedEvent = await relayd.waitForAudit { $0.event == "session_ended" && $0["serial"] == leaf.issued.serialNumber }
            let ended = try #require(endedEvent)
            #expect(ended["cause"] == "certificate_expired")
            #expect(ended["trigger"] == "expiry")
            #expect(ended["reason"]?.contains("CN=Short Intermediate") == true, "\(ended.fields)")
            try await relayd.verifyAuditChain()
        }
    }
}
