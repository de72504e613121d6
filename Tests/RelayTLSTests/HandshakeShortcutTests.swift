import Foundation
import RelayCore
import RelayTestSupport
import Testing
@testable import RelayTLS

/// Wave 15's shortcuts on the handshake path (docs/performance-history.md, "mTLS
/// handshakes (wave 15)") give what the code they skip gives: the attribute
/// types of name entries from a table read once, and the chain's expiry
/// naming the leaf by the subject already extracted.
@Suite("Handshake shortcuts: same answers as the long way")
struct HandshakeShortcutTests {
    @Test("every NID OpenSSL knows: the table's OID and short name are the ones read from the object")
    func attributeTypeTable() {
        var compared = 0
        for nid in Int32(0)..<Int32(2_000) {
            guard let both = IdentityExtractor.attributeTypeBothWays(nid: nid) else { continue }
            #expect(both.table.oid == both.direct.oid && both.table.shortName == both.direct.shortName, "NID \(nid)")
            compared += 1
        }
        #expect(compared > 1_000, "OpenSSL's object table looks empty: \(compared)")
        let table = IdentityExtractor.knownAttributeTypes
        #expect(table.count >= 20)
        let entries = Set(table.values.map { "\($0.shortName)=\($0.oid)" })
        #expect(entries.isSuperset(of: ["CN=2.5.4.3", "DC=0.9.2342.19200300.100.1.25", "emailAddress=1.2.840.113549.1.9.1"]))
    }

    static func der(_ certificate: IssuedCertificate) throws -> [UInt8] {
        let body = certificate.certificatePEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return [UInt8](try #require(Data(base64Encoded: body)))
    }

    @Test("the chain's expiry with the leaf's subject given equals the one read from the certificates",
          arguments: [(caDays: 3_650, leafDays: 30), (caDays: 30, leafDays: 365), (caDays: 90, leafDays: 90)])
    func expiryWithLeafSubject(caDays: Int, leafDays: Int) throws {
        let ca = try DevelopmentPKI.createCA(commonName: "Expiry \(caDays) CA, \"quoted\"", days: caDays)
        let leaf = try DevelopmentPKI.issue(CertificateRequest.client(commonName: "leaf+\(leafDays)", days: leafDays), signedBy: ca)
        let certificates = try [leaf, ca].compactMap { OwnedCertificate.fromDER(try Self.der($0)) }
        try #require(certificates.count == 2)
        let refs = certificates.map(\.ref)
        let subject = try Identity(pem: leaf.certificatePEM).subject
        // A leaf that is not the chain's certificate is never used to name it.
        let other = try #require(OwnedCertificate.fromDER(try Self.der(leaf)))
        let unrelated = DistinguishedName(rdns: [[.init(oid: "2.5.4.3", shortName: "CN", value: "not this one")]])
        // `certificates` and `other` own the X509s the pointers borrow, to the end of the test.
        defer { withExtendedLifetime((certificates, other)) {} }
        let long = try #require(ChainExpiry.earliest(of: refs))
        let short = try #require(ChainExpiry.earliest(of: refs, leaf: (refs[0], subject)))
        let notTheLeaf = try #require(ChainExpiry.earliest(of: refs, leaf: (other.ref, unrelated)))
        #expect(short == long)
        #expect(notTheLeaf == long)
        if caDays != leafDays { #expect(long.depth == (caDays < leafDays ? 1 : 0)) }
    }
}
