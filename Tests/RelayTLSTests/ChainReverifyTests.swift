import Foundation
import RelayTLS
import RelayTestSupport
import Testing

/// The re-check a reload runs on every live session (TLSServerContext.verify
/// on the stored chain, leaf first, root last, as the handshake verified it)
/// with intermediate CAs: the same verdict as the handshake, for the same
/// reasons (Relay issue 14, items 1, 2 and 10).
@Suite("reload re-check of stored chains with intermediate CAs")
struct ChainReverifyTests {
    /// DER of every certificate in `pem`, in order.
    static func der(_ pem: String) -> [[UInt8]] {
        pem.components(separatedBy: "-----BEGIN CERTIFICATE-----").dropFirst().compactMap { block in
            guard let body = block.components(separatedBy: "-----END CERTIFICATE-----").first,
                  let data = Data(base64Encoded: body.filter { !$0.isWhitespace }) else { return nil }
            return [UInt8](data)
        }
    }

    /// The chain a handshake stores for `files`: its certificate file (leaf
    /// and intermediates) plus the root.
    static func storedChain(_ files: TLSTestPKI.Files, root: TLSTestPKI.Files) throws -> PeerCertificateChain {
        let bundle = try String(contentsOfFile: files.certificate, encoding: .utf8)
        return PeerCertificateChain(derCertificates: der(bundle) + der(root.issued.certificatePEM))
    }

    static func context(_ pki: TLSTestPKI, crls: [String] = [], crlMissing: TLSMissingCRLPolicy = .refuse) throws -> TLSServerContext {
        var configuration = pki.serverConfiguration(crls: crls)
        configuration.crlMissing = crlMissing
        return try TLSServerContext(configuration: configuration)
    }

    static func rejection(_ context: TLSServerContext, _ chain: PeerCertificateChain) -> (code: Int, reason: String)? {
        do {
            try context.verify(chain)
            return nil
        } catch {
            guard case .certificateRejected(let code, let reason) = error else { return (-2, "\(error)") }
            return (code, reason)
        }
    }

    @Test("valid 2- and 3-level chains verify again, 200 times each, without and with every CRL loaded")
    func validChainsStayValid() throws {
        let tree = try IntermediateTree()
        defer { tree.pki.remove() }
        let chains = [try Self.storedChain(tree.pki.addChainedClient("two", chain: [tree.intermediate]), root: tree.pki.ca),
                      try Self.storedChain(tree.pki.addChainedClient("three", chain: [tree.lower, tree.upper]), root: tree.pki.ca)]
        #expect(chains.map(\.derCertificates.count) == [3, 4])
        for context in [try Self.context(tree.pki), try Self.context(tree.pki, crls: try tree.emptyCRLs())] {
            for chain in chains {
                for _ in 0..<200 { try context.verify(chain) }
            }
        }
    }

    @Test("a revoked intermediate, a missing CRL, a leaf without EKU and a CA leaf fail the re-check with their reasons")
    func refusals() throws {
        let tree = try IntermediateTree()
        defer { tree.pki.remove() }
        let three = try Self.storedChain(tree.pki.addChainedClient("three", chain: [tree.lower, tree.upper]), root: tree.pki.ca)

        var crls = try tree.emptyCRLs(leaving: ["crl-int-b1"])
        crls.append(try tree.pki.writeCRL(revoking: [tree.lower.issued.serialNumber], signedBy: tree.upper, name: "crl-int-b1"))
        #expect(Self.rejection(try Self.context(tree.pki, crls: crls), three)?.code == 23)

        let missing = Self.rejection(try Self.context(tree.pki, crls: try tree.emptyCRLs(leaving: ["crl-root"])), three)
        #expect(missing?.code == 3)
        #expect(missing?.reason.contains("no CRL from CA 'CN=Relay Test CA' is loaded (it issued 'CN=Relay Test Intermediate B1')") == true,
                "\(String(describing: missing))")
        try Self.context(tree.pki, crls: try tree.emptyCRLs(leaving: ["crl-root"]), crlMissing: .allowIntermediate).verify(three)
        // The leaf's own issuer must always have its CRL loaded.
        let leafCRLMissing = Self.rejection(try Self.context(tree.pki, crls: try tree.emptyCRLs(leaving: ["crl-int-b2"]),
                                                             crlMissing: .allowIntermediate), three)
        #expect(leafCRLMissing?.code == 3)
        #expect(leafCRLMissing?.reason.contains("CN=Relay Test Intermediate B2") == true, "\(String(describing: leafCRLMissing))")

        var noEKU = CertificateRequest.client(commonName: "no-eku")
        noEKU.extendedKeyUsage = []
        let noEKUChain = try Self.storedChain(tree.pki.addChainedClient("no-eku", noEKU, chain: [tree.intermediate]), root: tree.pki.ca)
        let eku = Self.rejection(try Self.context(tree.pki), noEKUChain)
        #expect(eku?.code == 26)
        #expect(eku?.reason.contains("extendedKeyUsage clientAuth") == true)

        var caLeaf = CertificateRequest.client(commonName: "ca-leaf")
        caLeaf.isCA = true
        caLeaf.keyUsage = [.digitalSignature, .keyCertSign]
        let caChain = try Self.storedChain(tree.pki.addChainedClient("ca-leaf", caLeaf, chain: [tree.intermediate]), root: tree.pki.ca)
        let ca = Self.rejection(try Self.context(tree.pki), caChain)
        #expect(ca?.code == 37)
        #expect(ca?.reason.contains("CA certificate") == true)
    }
}
