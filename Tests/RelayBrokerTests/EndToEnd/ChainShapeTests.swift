import Foundation
import RelayCore
import RelayTLS
import RelayTestSupport
import Testing

/// Client chains shaped as production CAs issue them, made by the openssl
/// CLI from extension config files (not by Relay's certificate builder),
/// against the real relayd: name constraints in an intermediate, path
/// length limits, a CA without keyCertSign, an unknown critical extension
/// in the leaf, expired and not-yet-valid intermediates. Each refusal must
/// happen in the handshake, under the cause docs/operations.md lists.
@Suite("relayd end to end: chain shapes from the openssl CLI", .serialized)
struct ChainShapeTests {
    static let caExtensions = """
    basicConstraints = critical,CA:TRUE
    keyUsage = critical,keyCertSign,cRLSign
    subjectKeyIdentifier = hash
    authorityKeyIdentifier = keyid:always
    """

    static let clientExtensions = """
    basicConstraints = critical,CA:FALSE
    keyUsage = critical,digitalSignature
    extendedKeyUsage = clientAuth
    subjectKeyIdentifier = hash
    authorityKeyIdentifier = keyid:always
    """

    /// Runs the openssl CLI; records the transcript when it fails.
    static func openssl(_ arguments: [String]) async throws {
        let process = try await ChildProcess("/usr/bin/openssl", arguments)
        let status = await process.waitForExit(timeout: 30)
        try #require(status == 0, "openssl \(arguments.joined(separator: " ")):\n\(process.transcript)")
    }

    /// Issues `<name>.pem`/`<name>.key` with the openssl CLI: a P-256 key,
    /// `subject` (openssl's `/CN=…` form), signed by `issuer` with the
    /// `[ext]` section `extensions` (x509v3 config lines, plus `[more]`
    /// sections after them). The certificate file holds the new certificate
    /// followed by `chain` (issuer first, never the root), as a client sends it.
    static func issue(_ pki: TLSTestPKI, _ name: String, subject: String, extensions: String,
                      issuer: TLSTestPKI.Files, chain: [TLSTestPKI.Files] = []) async throws -> TLSTestPKI.Files {
        let key = pki.directory.file("\(name).key"), request = pki.directory.file("\(name).csr")
        let single = pki.directory.file("\(name).single.pem"), config = pki.directory.file("\(name).ext")
        try "[ext]\n\(extensions)\n".write(toFile: config, atomically: true, encoding: .utf8)
        let serial = (0..<16).map { index in String(format: "%02X", index == 0 ? UInt8.random(in: 0x10...0x7F) : UInt8.random(in: 0...255)) }.joined()
        try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
        try await openssl(["req", "-new", "-key", key, "-subj", subject, "-out", request])
        try await openssl(["x509", "-req", "-in", request, "-CA", issuer.certificate, "-CAkey", issuer.key, "-set_serial", "0x" + serial,
                           "-days", "30", "-extfile", config, "-extensions", "ext", "-out", single])
        let pem = try String(contentsOfFile: single, encoding: .utf8)
        let issued = IssuedCertificate(certificatePEM: pem, privateKeyPEM: try String(contentsOfFile: key, encoding: .utf8),
                                       serialNumber: serial)
        let files = try TLSTestPKI.write(issued, name: name, in: pki.directory)
        let bundle = ([pem] + chain.map(\.issued.certificatePEM)).joined()
        try bundle.write(toFile: files.certificate, atomically: true, encoding: .utf8)
        return files
    }

    /// relayd's "connection denied" log lines, one per refused handshake.
    /// (The audit trail folds refusals with the same cause and reason from
    /// one address into a count, so it cannot tell two such clients apart.)
    static func denials(_ relayd: RelaydFixture) -> [Substring] {
        relayd.log.split(separator: "\n").filter { $0.contains("msg=\"connection denied\"") }
    }

    /// Connects as `files`: nil when admitted (WELCOME), else the `reason=`
    /// name relayd logged for the handshake refusal. Refusals are awaited
    /// one at a time, so the next "connection denied" line is this client's.
    static func refusalCause(_ relayd: RelaydFixture, _ files: TLSTestPKI.Files, _ label: String) async throws -> String? {
        let before = denials(relayd).count
        let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: files)
        defer { Task { await client.close() } }
        if case .welcome = await client.helloOutcome() { return nil }
        guard let line = await eventuallyValue(timeout: 10, every: 0.02, { () -> Substring? in
            let lines = denials(relayd)
            return lines.count > before ? lines[before] : nil
        }) else { return "\(label): refused without a \"connection denied\" log line" }
        guard let range = line.range(of: " reason=") else { return "\(label): no reason in \(line)" }
        return String(line[range.upperBound...].prefix { $0 != " " })
    }

    @Test("an intermediate's nameConstraints (URI relay.test, dirName O=Relay): leaves inside are admitted, a spiffe://evil.test or O=Evil leaf is refused with name_constraint_violation")
    func nameConstraints() async throws {
        try await withRelayd(start: false) { relayd in
            let pki = relayd.pki
            let constrained = try await Self.issue(pki, "int-nc", subject: "/CN=Constrained Intermediate", extensions: Self.caExtensions + """

            nameConstraints = critical,permitted;URI:relay.test,permitted;dirName:nc_dir
            [nc_dir]
            O = Relay
            """, issuer: pki.ca)
            func leaf(_ name: String, _ subject: String, uri: String) async throws -> TLSTestPKI.Files {
                try await Self.issue(pki, name, subject: subject, extensions: Self.clientExtensions + "\nsubjectAltName = URI:\(uri)",
                                     issuer: constrained, chain: [constrained])
            }
            let inside = try await leaf("inside", "/O=Relay/CN=inside", uri: "spiffe://relay.test/ns/orders")
            let otherDomain = try await leaf("other-domain", "/O=Relay/CN=other", uri: "spiffe://evil.test/ns/orders")
            let suffixDomain = try await leaf("suffix-domain", "/O=Relay/CN=suffix", uri: "spiffe://evil.relay.test/ns/orders")
            let otherOrganisation = try await leaf("other-o", "/O=Evil/CN=inside", uri: "spiffe://relay.test/ns/orders")
            try await relayd.start()

            #expect(try await Self.refusalCause(relayd, inside, "inside") == nil, "a leaf inside the constraints was refused")
            for (label, files) in [("spiffe://evil.test", otherDomain), ("spiffe://evil.relay.test", suffixDomain), ("O=Evil", otherOrganisation)] {
                let cause = try await Self.refusalCause(relayd, files, label)
                #expect(cause == "name_constraint_violation", "\(label): \(String(describing: cause))")
            }
        }
    }

    @Test("pathlen:0 on the upper of two intermediates refuses the chain (chain_too_long); on the lower one it is fine; a CA without keyCertSign is invalid_ca; an unknown critical extension in the leaf is unhandled_critical_extension")
    func pathLengthCABitsAndCriticalExtensions() async throws {
        try await withRelayd(start: false) { relayd in
            let pki = relayd.pki
            let pathZero = try await Self.issue(pki, "int-p0", subject: "/CN=Path Zero", extensions: Self.caExtensions.replacingOccurrences(
                of: "CA:TRUE", with: "CA:TRUE,pathlen:0"), issuer: pki.ca)
            let belowPathZero = try await Self.issue(pki, "int-below-p0", subject: "/CN=Below Path Zero", extensions: Self.caExtensions,
                                                     issuer: pathZero, chain: [pathZero])
            let tooDeep = try await Self.issue(pki, "too-deep", subject: "/CN=too-deep", extensions: Self.clientExtensions,
                                               issuer: belowPathZero, chain: [belowPathZero, pathZero])
            let upper = try await Self.issue(pki, "int-upper", subject: "/CN=Upper", extensions: Self.caExtensions, issuer: pki.ca)
            let lowerPathZero = try await Self.issue(pki, "int-lower-p0", subject: "/CN=Lower Path Zero", extensions: Self.caExtensions
                .replacingOccurrences(of: "CA:TRUE", with: "CA:TRUE,pathlen:0"), issuer: upper, chain: [upper])
            let fine = try await Self.issue(pki, "fine", subject: "/CN=fine", extensions: Self.clientExtensions,
                                            issuer: lowerPathZero, chain: [lowerPathZero, upper])
            let noCertSign = try await Self.issue(pki, "int-no-certsign", subject: "/CN=No CertSign", extensions: Self.caExtensions
                .replacingOccurrences(of: "keyCertSign,cRLSign", with: "digitalSignature,cRLSign"), issuer: pki.ca)
            let underNoCertSign = try await Self.issue(pki, "under-no-certsign", subject: "/CN=under", extensions: Self.clientExtensions,
                                                       issuer: noCertSign, chain: [noCertSign])
            let critical = try await Self.issue(pki, "critical-ext", subject: "/CN=critical", extensions: Self.clientExtensions
                + "\n1.3.6.1.4.1.55555.1 = critical,ASN1:UTF8String:relay", issuer: pki.ca)
            try await relayd.start()

            #expect(try await Self.refusalCause(relayd, fine, "fine") == nil, "pathlen:0 on the issuing CA refused its own leaf")
            for (label, files, expected) in [("below pathlen:0", tooDeep, "chain_too_long"), ("no keyCertSign", underNoCertSign, "invalid_ca"),
                                             ("critical extension", critical, "unhandled_critical_extension")] {
                let cause = try await Self.refusalCause(relayd, files, label)
                #expect(cause == expected, "\(label): \(String(describing: cause))")
            }
        }
    }

    @Test("an expired and a not-yet-valid intermediate refuse their valid leaves at the handshake (certificate_expired, certificate_not_yet_valid)")
    func intermediateValidity() async throws {
        try await withRelayd(start: false) { relayd in
            let pki = relayd.pki
            func intermediate(_ name: String, startingInDays start: Int) throws -> TLSTestPKI.Files {
                var request = CertificateRequest(subject: [[NameAttribute("CN", name)]], isCA: true)
                request.setValidity(days: 2, startingInDays: start)
                return try pki.add(name, request)
            }
            let expired = try intermediate("Expired Intermediate", startingInDays: -10)
            let future = try intermediate("Future Intermediate", startingInDays: 5)
            let underExpired = try pki.addChainedClient("under-expired", chain: [expired])
            let underFuture = try pki.addChainedClient("under-future", chain: [future])
            try await relayd.start()
            for (label, files, expected) in [("expired", underExpired, "certificate_expired"), ("future", underFuture, "certificate_not_yet_valid")] {
                let cause = try await Self.refusalCause(relayd, files, label)
                #expect(cause == expected, "\(label): \(String(describing: cause))")
            }
        }
    }
}
