import Foundation
import RelayTLS
import RelayTestSupport
import Testing

/// X509 error 26 (unsuitable purpose) has several causes; the refusal's
/// reason must name the one the certificate has (wave-14 attack run: a
/// leaf with EKU clientAuth but keyUsage without digitalSignature was told
/// it "must carry extendedKeyUsage clientAuth (a certificate without an
/// EKU extension is refused)", which it already did).
@Suite("relayd end to end: the reason for an unsuitable client certificate", .serialized)
struct ClientLeafReasonTests {
    @Test("EKU clientAuth but keyUsage cRLSign only: refused, the reason names keyUsage digitalSignature, not a missing EKU")
    func keyUsageWithoutDigitalSignature() async throws {
        let tree = try IntermediateTree()
        var request = CertificateRequest.client(commonName: "crl-signer")
        request.keyUsage = [.cRLSign]
        let leaf = try tree.pki.addChainedClient("crl-signer", request, chain: [tree.intermediate])
        var serverOnly = CertificateRequest.client(commonName: "server-only")
        serverOnly.extendedKeyUsage = [.serverAuth]
        let serverLeaf = try tree.pki.addChainedClient("server-only", serverOnly, chain: [tree.intermediate])
        try await withRelayd(pki: tree.pki) { relayd in
            #expect(await ChainRevocationTests.tlsRefusal(relayd, as: leaf) == .alertReceived(code: 43, description: "unsupported certificate"))
            let refusal = await relayd.waitForAudit { $0.event == "connection_refused" }
            let reason = try #require(refusal?["reason"])
            #expect(reason.contains("digitalSignature"), "\(reason)")
            #expect(!reason.contains("without an EKU"), "\(reason)")

            #expect(await ChainRevocationTests.tlsRefusal(relayd, as: serverLeaf) != nil)
            let second = await relayd.waitForAudit { $0.event == "connection_refused" && $0["reason"] != reason }
            let serverReason = try #require(second?["reason"])
            #expect(serverReason.contains("does not include clientAuth"), "\(serverReason)")
        }
    }
}
