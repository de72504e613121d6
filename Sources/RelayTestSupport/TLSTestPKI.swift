import Foundation
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RelayTLS

/// A ready development PKI in a temporary directory for TLS tests: a CA, a
/// server certificate for `localhost` / `127.0.0.1`, and a client `alice`.
/// More clients (from this CA or another) can be added by name.
public final class TLSTestPKI: Sendable {
    /// Paths of one certificate and its key.
    public struct Files: Sendable, Hashable {
        public var certificate: String
        public var key: String
        public var issued: IssuedCertificate
    }

    public let directory: TemporaryDirectory
    public let ca: Files
    public let server: Files
    public let alice: Files
    private let issued = NIOLockedValueBox<[String: Files]>([:])

    public init() throws {
        directory = try TemporaryDirectory(prefix: "relay-tls-pki")
        let caIssued = try DevelopmentPKI.createCA(commonName: "Relay Test CA")
        ca = try Self.write(caIssued, name: "ca", in: directory)
        let serverIssued = try DevelopmentPKI.issue(
            .server(commonName: "localhost", sans: [.dns("localhost"), .ip("127.0.0.1"), .ip("::1")]), signedBy: caIssued)
        server = try Self.write(serverIssued, name: "server", in: directory)
        let aliceIssued = try DevelopmentPKI.issue(
            .client(commonName: "alice", organizationalUnits: ["payments"], sans: [.uri("spiffe://relay.test/ns/prod/sa/alice")]),
            signedBy: caIssued)
        alice = try Self.write(aliceIssued, name: "alice", in: directory)
    }

    /// Writes `<name>.pem` and `<name>.key` (0600).
    public static func write(_ certificate: IssuedCertificate, name: String, in directory: TemporaryDirectory) throws -> Files {
        let files = Files(certificate: directory.file("\(name).pem"), key: directory.file("\(name).key"), issued: certificate)
        try certificate.write(certificateTo: files.certificate, keyTo: files.key)
        return files
    }

    /// Issues a certificate from `request`, signed by `issuer` (the test CA
    /// by default), and writes it as `<name>.pem`/`<name>.key`.
    @discardableResult
    public func add(_ name: String, _ request: CertificateRequest, signedBy issuer: IssuedCertificate? = nil) throws -> Files {
        let certificate = try DevelopmentPKI.issue(request, signedBy: issuer ?? ca.issued)
        let files = try Self.write(certificate, name: name, in: directory)
        issued.withLockedValue { $0[name] = files }
        return files
    }

    /// Issues a client certificate `CN=<commonName>` (default: `name`) from
    /// the test CA that expires `seconds` from now, for expiry tests.
    /// notAfter has whole-second precision; read it back from `issued`.
    @discardableResult
    public func addShortLived(_ name: String, commonName: String? = nil, organizationalUnits: [String] = [],
                              validFor seconds: TimeInterval) throws -> Files {
        var request = CertificateRequest.client(commonName: commonName ?? name, organizationalUnits: organizationalUnits)
        request.notAfter = Date().addingTimeInterval(seconds)
        return try add(name, request)
    }

    /// Writes a self-signed certificate from `request`.
    @discardableResult
    public func addSelfSigned(_ name: String, _ request: CertificateRequest) throws -> Files {
        let files = try Self.write(try DevelopmentPKI.selfSigned(request), name: name, in: directory)
        issued.withLockedValue { $0[name] = files }
        return files
    }

    /// Writes a CRL from the test CA revoking `serials`, its nextUpdate
    /// `days` from now; returns its path.
    public func writeCRL(revoking serials: [String], name: String = "crl", days: Int = 30) throws -> String {
        let path = directory.file("\(name).pem")
        try DevelopmentPKI.writeFile(try DevelopmentPKI.crl(revoking: serials, signedBy: ca.issued, days: days), to: path, mode: 0o644)
        return path
    }

    public func files(_ name: String) -> Files? { issued.withLockedValue { $0[name] } }

    public func serverConfiguration(crls: [String] = [], minimumVersion: TLSMinimumVersion = .tls13,
                                    handshakeTimeout: TimeAmount = .seconds(10)) -> TLSServerConfiguration {
        TLSServerConfiguration(certificateChain: .file(server.certificate), privateKey: .file(server.key),
                               clientCAs: [.file(ca.certificate)], crls: crls.map(PEMSource.file),
                               minimumVersion: minimumVersion, handshakeTimeout: handshakeTimeout)
    }

    public func clientConfiguration(_ client: Files? = nil, serverName: String = "localhost") -> TLSClientConfiguration {
        let files = client ?? alice
        return TLSClientConfiguration(certificateChain: .file(files.certificate), privateKey: .file(files.key),
                                      trustRoots: [.file(ca.certificate)], serverName: serverName)
    }

    public func remove() { directory.remove() }
}
