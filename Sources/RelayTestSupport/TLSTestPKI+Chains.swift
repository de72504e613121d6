import Foundation
import RelayTLS

/// Production-shaped PKIs for tests: intermediate CAs under the test root,
/// clients whose certificate file carries their chain (leaf first, as a
/// client sends it), and CRLs from any CA of the tree.
extension TLSTestPKI {
    /// An intermediate CA `CN=<commonName>` (default: `name`) signed by
    /// `issuer` (the root when nil), written as `<name>.pem`/`<name>.key`.
    @discardableResult
    public func addIntermediate(_ name: String, commonName: String? = nil, signedBy issuer: Files? = nil) throws -> Files {
        var request = CertificateRequest(subject: [[NameAttribute("CN", commonName ?? name)]], isCA: true)
        request.setValidity(days: 3650)
        return try add(name, request, signedBy: issuer?.issued)
    }

    /// A client certificate from `request` (default: `CN=<name>`, EKU
    /// clientAuth) signed by `chain[0]`, whose `<name>.pem` holds the leaf
    /// followed by every CA of `chain` (issuer first, never the root).
    @discardableResult
    public func addChainedClient(_ name: String, _ request: CertificateRequest? = nil, chain: [Files]) throws -> Files {
        guard let issuer = chain.first else {
            throw RelaydFixtureError(message: "addChainedClient(\(name)): the chain needs at least the issuing CA")
        }
        let files = try add(name, request ?? .client(commonName: name), signedBy: issuer.issued)
        let bundle = ([files.issued.certificatePEM] + chain.map(\.issued.certificatePEM)).joined()
        try DevelopmentPKI.writeFile(bundle, to: files.certificate, mode: 0o644)
        return files
    }

    /// Writes a CRL signed by `issuer` (any CA of the tree) revoking
    /// `serials` as `<name>.pem`; returns its path. Rewriting the same name
    /// replaces the file in place.
    public func writeCRL(revoking serials: [String], signedBy issuer: Files, name: String) throws -> String {
        let path = directory.file("\(name).pem")
        try DevelopmentPKI.writeFile(try DevelopmentPKI.crl(revoking: serials, signedBy: issuer.issued), to: path, mode: 0o644)
        return path
    }
}

/// The test PKI's root with a 2-level branch (`int-a`) and a 3-level one
/// (`int-b1` → `int-b2`), for chains as production PKIs issue them.
public struct IntermediateTree: Sendable {
    public let pki: TLSTestPKI
    /// `CN=Relay Test Intermediate A`, signed by the root.
    public let intermediate: TLSTestPKI.Files
    /// `CN=Relay Test Intermediate B1`, signed by the root.
    public let upper: TLSTestPKI.Files
    /// `CN=Relay Test Intermediate B2`, signed by B1.
    public let lower: TLSTestPKI.Files

    public init() throws {
        pki = try TLSTestPKI()
        intermediate = try pki.addIntermediate("int-a", commonName: "Relay Test Intermediate A")
        upper = try pki.addIntermediate("int-b1", commonName: "Relay Test Intermediate B1")
        lower = try pki.addIntermediate("int-b2", commonName: "Relay Test Intermediate B2", signedBy: upper)
    }

    /// `count` clients under `int-a` (`two-N`) and `count` under `int-b2`
    /// (`three-N`), alternating.
    public func clients(_ count: Int) throws -> [TLSTestPKI.Files] {
        var out: [TLSTestPKI.Files] = []
        for index in 0..<count {
            out.append(try pki.addChainedClient("two-\(index)", chain: [intermediate]))
            out.append(try pki.addChainedClient("three-\(index)", chain: [lower, upper]))
        }
        return out
    }

    /// CRLs revoking nothing from every CA of the tree except `omitted`
    /// (by name: `crl-root`, `crl-int-a`, `crl-int-b1`, `crl-int-b2`); their paths.
    public func emptyCRLs(leaving omitted: Set<String> = []) throws -> [String] {
        let issuers: [(String, TLSTestPKI.Files)] = [("crl-root", pki.ca), ("crl-int-a", intermediate),
                                                     ("crl-int-b1", upper), ("crl-int-b2", lower)]
        return try issuers.filter { !omitted.contains($0.0) }.map { try pki.writeCRL(revoking: [], signedBy: $0.1, name: $0.0) }
    }
}

/// One workload's certificate issued by two unrelated CAs (``TLSTestPKI/sameWorkloadFromTwoCAs()``).
public struct TwinWorkloads: Sendable {
    /// Issued by the test root.
    public var ours: TLSTestPKI.Files
    /// The same subject and SPIFFE ID, issued by `partnerCA`.
    public var theirs: TLSTestPKI.Files
    /// A second root, "Partner CA": list it in `client_ca` next to the test root.
    public var partnerCA: TLSTestPKI.Files
}

extension TLSTestPKI {
    /// `CN=worker` with the SPIFFE ID `spiffe://relay.test/ns/prod/sa/worker`,
    /// issued by the test root and again by a second root, "Partner CA"
    /// (`partner-ca.pem`): with both CAs trusted, one subject from two
    /// issuers, which Relay treats as two workloads (two durable owners).
    public func sameWorkloadFromTwoCAs() throws -> TwinWorkloads {
        let partnerCA = try Self.write(try DevelopmentPKI.createCA(commonName: "Partner CA"), name: "partner-ca", in: directory)
        let request = CertificateRequest.client(commonName: "worker", sans: [.uri("spiffe://relay.test/ns/prod/sa/worker")])
        return TwinWorkloads(ours: try add("worker-ours", request),
                             theirs: try add("worker-partner", request, signedBy: partnerCA.issued),
                             partnerCA: partnerCA)
    }
}
