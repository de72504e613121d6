import Foundation
@testable import RelayBroker
import RelayCore
import Testing

/// Who owns a durable cursor.
@Suite struct IdentityScopeTests {
    static func dn(_ pairs: [(String, String, String)]) -> DistinguishedName {
        DistinguishedName(rdns: pairs.map { [.init(oid: $0.0, shortName: $0.1, value: $0.2)] })
    }
    static let spire = dn([("2.5.4.6", "C", "US"), ("2.5.4.10", "O", "SPIRE")])
    static let rootCA = dn([("2.5.4.3", "CN", "Root CA")])
    static let otherCA = dn([("2.5.4.3", "CN", "Other CA")])

    static func identity(subject: DistinguishedName, issuer: DistinguishedName = rootCA,
                         spiffe: String? = nil, fingerprint: UInt64 = 0xAAAA_AAAA_AAAA_AAAA) -> Identity {
        Identity(subject: subject, issuer: issuer, serialNumber: "01", notBefore: Date(timeIntervalSince1970: 0),
                 notAfter: Date(timeIntervalSince1970: 4_000_000_000),
                 fingerprintSHA256: CertificateFingerprint(w0: fingerprint, w1: fingerprint, w2: fingerprint, w3: fingerprint),
                 sans: SubjectAlternativeNames(uri: spiffe.map { [$0] } ?? []), spiffe: spiffe.flatMap(SPIFFEID.init(uri:)))
    }

    func owner(_ identity: Identity) throws -> [UInt8] {
        try #require(IdentityScope.durableOwner(identity)).digest
    }

    @Test("SVIDs with the same subject but different SPIFFE IDs are different owners")
    func spiffeIDSeparates() throws {
        let a = Self.identity(subject: Self.spire, spiffe: "spiffe://prod/ns/a/sa/billing")
        let b = Self.identity(subject: Self.spire, spiffe: "spiffe://prod/ns/b/sa/intruder", fingerprint: 0xB)
        #expect(try owner(a) != owner(b))
    }

    @Test("a renewed certificate (same names, same issuer, new key) is the same owner; another issuer is not")
    func rotationKeepsTheOwner() throws {
        let subject = Self.dn([("2.5.4.3", "CN", "worker")])
        let old = Self.identity(subject: subject, fingerprint: 0xA)
        let renewed = Self.identity(subject: subject, fingerprint: 0xB)
        let elsewhere = Self.identity(subject: subject, issuer: Self.otherCA, fingerprint: 0xC)
        #expect(try owner(old) == owner(renewed))
        #expect(try owner(old) != owner(elsewhere))
    }

    @Test("a certificate with neither subject nor SPIFFE ID owns its cursors alone")
    func namelessCertificatesAreSeparate() throws {
        let empty = DistinguishedName(rdns: [])
        #expect(try owner(Self.identity(subject: empty, fingerprint: 0xA)) != owner(Self.identity(subject: empty, fingerprint: 0xB)))
    }

}
