import Foundation
import RelayCore
import RelayTLS
import RelayTestSupport
import Testing

/// Identity extraction by OpenSSL from certificates built to stress it.
@Suite struct IdentityExtractionTests {
    static let ca: IssuedCertificate? = try? DevelopmentPKI.createCA(commonName: "Identity Test CA")

    static func issue(_ request: CertificateRequest) throws -> (IssuedCertificate, Identity) {
        let ca = try #require(Self.ca)
        let certificate = try DevelopmentPKI.issue(request, signedBy: ca)
        return (certificate, try Identity(pem: certificate.certificatePEM))
    }

    @Test func multiValuedRDNsAndSeveralOUsKeepOrderAndGrouping() throws {
        let request = CertificateRequest(subject: [
            [NameAttribute("DC", "com")], [NameAttribute("DC", "example")],
            [NameAttribute("C", "DE"), NameAttribute("ST", "Berlin")],
            [NameAttribute("O", "Example AG")],
            [NameAttribute("OU", "payments")], [NameAttribute("OU", "eu-west")],
            [NameAttribute("CN", "svc-a"), NameAttribute("UID", "u-17"), NameAttribute("serialNumber", "4711")],
            [NameAttribute("emailAddress", "ops@example.com")], [NameAttribute("L", "Mitte")],
        ], extendedKeyUsage: [.clientAuth])
        let (certificate, identity) = try Self.issue(request)
        let subject = identity.subject
        #expect(subject.rdns.count == 9)
        #expect(subject.rdns.map(\.count) == [1, 1, 2, 1, 1, 1, 3, 1, 1])
        // Inside one RDN, DER orders a SET OF by encoding, so the certificate
        // holds these three in DER order, whatever order they were added in.
        #expect(Set(subject.rdns[6].map(\.key)) == ["CN", "UID", "serialNumber"])
        #expect(subject.values(of: "OU") == ["payments", "eu-west"])
        #expect(subject.values(of: "DC") == ["com", "example"])
        #expect(subject.values(of: "2.5.4.11") == ["payments", "eu-west"])
        #expect(subject.values(of: "emailAddress") == ["ops@example.com"])
        #expect(subject.values(of: "L") == ["Mitte"])
        // The same name the OpenSSL CLI prints (it lists the attributes of a
        // multi-valued RDN last-first; RFC 4514 leaves that order open).
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try certificate.certificatePEM.write(toFile: directory.file("c.pem"), atomically: true, encoding: .utf8)
        let cli = try runCLI("/usr/bin/openssl", ["x509", "-in", directory.file("c.pem"), "-noout", "-subject", "-nameopt", "RFC2253"])
        let asOpenSSLPrints = subject.rdns.reversed().map { rdn in
            rdn.reversed().map { "\($0.key)=\(DistinguishedName.escape($0.value))" }.joined(separator: "+")
        }.joined(separator: ",")
        #expect(cli.trimmingCharacters(in: .whitespacesAndNewlines) == "subject=" + asOpenSSLPrints)
        #expect(subject.rfc4514.hasPrefix("L=Mitte,emailAddress=ops@example.com,"))
        #expect(identity.issuer.values(of: "CN") == ["Identity Test CA"])
    }

    @Test func specialCharactersStayExactlyAsEncoded() throws {
        let tricky = #"a,b+c"d\e<f>g;h"#
        let request = CertificateRequest(subject: [
            [NameAttribute("O", "#leading hash")], [NameAttribute("OU", " padded ")], [NameAttribute("CN", tricky)],
        ], extendedKeyUsage: [.clientAuth])
        let (_, identity) = try Self.issue(request)
        #expect(identity.subject.values(of: "CN") == [tricky])
        #expect(identity.subject.values(of: "O") == ["#leading hash"])
        #expect(identity.subject.values(of: "OU") == [" padded "])
        #expect(identity.subject.rfc4514 == ##"CN=a\,b\+c\"d\\e\<f\>g\;h,OU=\ padded\ ,O=\#leading hash"##)
    }

    @Test func utf8ValuesAreDecoded() throws {
        let request = CertificateRequest(subject: [[NameAttribute("O", "Bäckerei Müller")], [NameAttribute("CN", "東京-サービス ✓")]],
                                         extendedKeyUsage: [.clientAuth])
        let (_, identity) = try Self.issue(request)
        #expect(identity.subject.values(of: "CN") == ["東京-サービス ✓"])
        #expect(identity.subject.values(of: "O") == ["Bäckerei Müller"])
    }

    @Test func unknownAttributesAreKeptByOID() throws {
        let request = CertificateRequest(subject: [[NameAttribute("1.3.6.1.4.1.99999.1", "tenant-42")], [NameAttribute("CN", "x")]],
                                         extendedKeyUsage: [.clientAuth])
        let (_, identity) = try Self.issue(request)
        let attribute = try #require(identity.subject.rdns.first?.first)
        #expect(attribute.oid == "1.3.6.1.4.1.99999.1")
        #expect(attribute.shortName == nil)
        #expect(attribute.value == "tenant-42")
        #expect(identity.subject.values(of: "1.3.6.1.4.1.99999.1") == ["tenant-42"])
    }

    @Test func severalSANsOfEachTypeInOrder() throws {
        let request = CertificateRequest.client(commonName: "multi", sans: [
            .dns("a.example.com"), .uri("spiffe://prod.example/ns/payments/sa/api"), .ip("10.0.0.1"),
            .email("a@example.com"), .dns("b.example.com"), .ip("2001:db8::1"), .uri("https://example.com/x?y=1,2"),
            .email("b@example.com"),
        ])
        let (_, identity) = try Self.issue(request)
        #expect(identity.sans.dns == ["a.example.com", "b.example.com"])
        #expect(identity.sans.ip == ["10.0.0.1", "2001:db8::1"])
        #expect(identity.sans.uri == ["spiffe://prod.example/ns/payments/sa/api", "https://example.com/x?y=1,2"])
        #expect(identity.sans.email == ["a@example.com", "b@example.com"])
        #expect(identity.spiffe?.trustDomain == "prod.example")
        #expect(identity.spiffe?.segments == ["ns", "payments", "sa", "api"])
        #expect(identity.values(of: "spiffe.path") == ["/ns/payments/sa/api"])
    }

    @Test func twoSPIFFEIDsAreAmbiguousAndGiveNone() throws {
        let request = CertificateRequest.client(commonName: "two", sans: [.uri("spiffe://a.example/x"), .uri("spiffe://b.example/y")])
        let (_, identity) = try Self.issue(request)
        #expect(identity.spiffe == nil)
        #expect(identity.sans.uri.count == 2)
    }

    /// URI schemes are case-insensitive (RFC 3986 §3.1): `SPIFFE://…` names
    /// a second SPIFFE ID to any consumer that normalises the URI, so the
    /// certificate is as ambiguous as with two lower-case ones (wave 14).
    @Test func aSecondSPIFFEIDWithAnUpperCaseSchemeIsAmbiguousToo() throws {
        for other in ["SPIFFE://a.example/billing", "Spiffe://a.example/billing", "spiffe://A.example/x"] {
            let request = CertificateRequest.client(commonName: "two", sans: [.uri(other), .uri("spiffe://a.example/orders")])
            let (_, identity) = try Self.issue(request)
            #expect(identity.spiffe == nil, "\(other) next to spiffe://a.example/orders gave \(String(describing: identity.spiffe))")
        }
    }

    @Test func serialValidityAndFingerprintMatchTheOpenSSLCLI() throws {
        var request = CertificateRequest.client(commonName: "dates")
        request.notBefore = Date(timeIntervalSince1970: 1_700_000_000)
        request.notAfter = Date(timeIntervalSince1970: 1_900_000_000)
        let (certificate, identity) = try Self.issue(request)
        #expect(identity.notBefore == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(identity.notAfter == Date(timeIntervalSince1970: 1_900_000_000))
        #expect(identity.serialNumber == certificate.serialNumber)
        #expect(!identity.serialNumber.hasPrefix("0"))

        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("c.pem")
        try certificate.certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        let cli = try runCLI("/usr/bin/openssl", ["x509", "-in", path, "-noout", "-serial", "-fingerprint", "-sha256"])
        #expect(cli.contains("serial=\(identity.serialNumber)") || cli.contains("serial=0\(identity.serialNumber)"))
        let fingerprint = identity.fingerprintSHA256.hex.uppercased().enumerated().map { index, char in
            index > 0 && index % 2 == 0 ? ":\(char)" : "\(char)"
        }.joined()
        #expect(cli.contains(fingerprint), "\(cli) vs \(fingerprint)")
    }

    @Test func derAndPEMGiveTheSameIdentityAsTheHandshake() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let pair = try EmbeddedTLSPair(
            client: try TLSClientContext(configuration: pki.clientConfiguration()).makeHandler(),
            server: try TLSServerContext(configuration: pki.serverConfiguration()).makeHandler())
        defer { pair.finish() }
        try pair.connect()
        let event = try #require(pair.serverRecorder.handshake)
        let leafDER = try #require(event.peerChain.derCertificates.first)
        #expect(try Identity(der: leafDER) == event.peer)
        #expect(try Identity(pem: pki.alice.issued.certificatePEM) == event.peer)
    }

    @Test func garbageIsNotACertificate() {
        #expect(throws: IdentityExtractionError.notACertificate(source: "DER input")) { try Identity(der: [0x30, 0x03, 0x02, 0x01]) }
        #expect(throws: IdentityExtractionError.notACertificate(source: "PEM input")) { try Identity(pem: "hello") }
        #expect(throws: IdentityExtractionError.self) { try Identity(der: []) }
    }
}

func runCLI(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
