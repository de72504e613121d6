import Foundation
import RelayCore
@testable import RelayPolicy

/// Builds test identities directly (RelayTLS builds real ones from certificates).
enum Fixture {
    static let oids = ["C": "2.5.4.6", "O": "2.5.4.10", "OU": "2.5.4.11", "CN": "2.5.4.3", "DC": "0.9.2342.19200300.100.1.25"]

    static func name(_ attributes: [(String, String)]) -> DistinguishedName {
        DistinguishedName(rdns: attributes.map { [.init(oid: oids[$0.0] ?? "1.2.3.4", shortName: $0.0, value: $0.1)] })
    }

    static func identity(cn: [String] = [], ou: [String] = [], o: [String] = [],
                         issuerO: String = "Relay CA", dns: [String] = [], email: [String] = [],
                         uri: [String] = [], spiffe: String? = nil) -> Identity {
        var subject: [(String, String)] = o.map { ("O", $0) }
        subject += ou.map { ("OU", $0) }
        subject += cn.map { ("CN", $0) }
        return Identity(
            subject: name(subject), issuer: name([("O", issuerO), ("CN", "Relay Root")]),
            serialNumber: "1F", notBefore: Date(timeIntervalSince1970: 0),
            notAfter: Date(timeIntervalSince1970: 4_000_000_000), fingerprintSHA256: CertificateFingerprint(w0: 0xab12_0000_0000_0000, w1: 0, w2: 0, w3: 0),
            sans: SubjectAlternativeNames(dns: dns, uri: uri + (spiffe.map { [$0] } ?? []), email: email),
            spiffe: spiffe.flatMap(SPIFFEID.init(uri:)))
    }

    static func policy(_ rules: RuleDefinition..., principal: String? = nil) throws -> Policy {
        try Policy(definitions: rules, principal: principal)
    }
}

func topic(_ s: String) throws -> Topic { try Topic(s) }
func filter(_ s: String) throws -> TopicFilter { try TopicFilter(s) }

extension Permissions {
    func allows(publish s: String) throws -> Bool { canPublish(try Topic(s)).isAllowed }
    func allows(subscribe s: String) throws -> Bool { canSubscribe(try TopicFilter(s)).isAllowed }
    var publishFilters: [String] { publishAllow.map(\.filter.value) }
    var subscribeFilters: [String] { subscribeAllow.map(\.filter.value) }
}
