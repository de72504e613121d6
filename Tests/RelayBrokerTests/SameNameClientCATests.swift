import Foundation
import RelayBroker
import RelayTLS
import RelayTestSupport
import Testing

/// Two different CAs with one subject name in `client_ca` are one issuer to
/// policy (`issuer.<ATTR>`) and to durable owners (docs/security.md,
/// "Durable cursors"): a client of one can hold the durables of the
/// other's client with the same subject. relayd warns at start and in the
/// config checks, as it warns about exposed keys.
@Suite("client_ca: two CAs with one name are warned about")
struct SameNameClientCATests {
    @Test("two different client CAs with the same subject give one warning naming it and both files; distinct names or one CA listed twice give none")
    func sameNameClientCAs() throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let twin = try pki.addSelfSigned("twin-ca", CertificateRequest(subject: [[NameAttribute("CN", "Relay Test CA")]], isCA: true))
        let other = try pki.addSelfSigned("other-ca", CertificateRequest(subject: [[NameAttribute("CN", "Other CA")]], isCA: true))
        func warnings(_ cas: [String]) throws -> [String] {
            let list = cas.map { "\"\($0)\"" }.joined(separator: ", ")
            let text = "[tls]\ncertificate = \"\(pki.server.certificate)\"\nprivate_key = \"\(pki.server.key)\"\nclient_ca = [\(list)]\n"
            let configuration = try BrokerConfiguration.parse(text, file: pki.directory.file("relay.toml"), baseDirectory: pki.directory.path)
            return SecurityWarnings.check(configuration).filter { $0.contains("the same subject") }
        }
        let twins = try warnings([pki.ca.certificate, twin.certificate])
        #expect(twins.count == 1, "\(twins)")
        let warning = try #require(twins.first)
        #expect(warning.contains("CN=Relay Test CA") && warning.contains(pki.ca.certificate) && warning.contains(twin.certificate),
                "\(warning)")
        #expect(try warnings([pki.ca.certificate, other.certificate]).isEmpty)
        #expect(try warnings([pki.ca.certificate, pki.ca.certificate]).isEmpty)
    }
}
