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
