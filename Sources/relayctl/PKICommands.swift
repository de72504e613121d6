import ArgumentParser
import Foundation
import RelayCLISupport
import RelayCore
import RelayTLS

/// `relayctl pki`: a development PKI in a directory (ca.pem/ca.key, certificates, crl.pem).
struct PKI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "A development PKI: a CA, server and client certificates, and a CRL (not for production keys).",
        subcommands: [Init.self, Issue.self, Revoke.self])

    static func path(_ dir: String, _ name: String) -> String {
        URL(fileURLWithPath: dir).appendingPathComponent(name).path
    }

    /// Loads the CA from `dir`.
    static func loadCA(_ dir: String) throws -> IssuedCertificate {
        guard let certificate = try? String(contentsOfFile: path(dir, "ca.pem"), encoding: .utf8),
              let key = try? String(contentsOfFile: path(dir, "ca.key"), encoding: .utf8) else {
            printError("relayctl: no CA in \(dir) (ca.pem and ca.key); run `relayctl pki init --dir \(dir)` first")
            throw RelayExit.noInput.exitCode
        }
        return IssuedCertificate(certificatePEM: certificate, privateKeyPEM: key, serialNumber: "")
    }

    /// Rewrites `dir/crl.pem` revoking every serial in `dir/revoked.txt`.
    static func writeCRL(_ dir: String, ca: IssuedCertificate) throws {
        let list = (try? String(contentsOfFile: path(dir, "revoked.txt"), encoding: .utf8)) ?? ""
        let serials = list.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        try DevelopmentPKI.writeFile(try DevelopmentPKI.crl(revoking: serials, signedBy: ca, days: 365),
                                     to: path(dir, "crl.pem"), mode: 0o644)
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a CA, a server certificate for localhost/127.0.0.1 and three example clients.",
            discussion: """
            Writes into DIR: ca.pem/ca.key, server.pem/server.key (localhost, 127.0.0.1, ::1), \
            billing.pem/.key (OU=billing), operator.pem/.key (OU=operators), \
            payments.pem/.key (SPIFFE ID spiffe://relay.example/payments/api) and an empty crl.pem. \
            Keys are written with mode 0600.

            Example:
              relayctl pki init --dir ./pki
            """)

        @Option(name: .long, help: ArgumentHelp("The directory to create the PKI in.", valueName: "dir"))
        var dir: String

        @Flag(name: .long, help: "Replace an existing CA in DIR.")
        var force = false

        func run() throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            if FileManager.default.fileExists(atPath: PKI.path(dir, "ca.pem")), !force {
                printError("relayctl: \(dir) already holds a CA (ca.pem); pass --force to replace it")
                throw RelayExit.usage.exitCode
            }
            let ca = try DevelopmentPKI.createCA(commonName: "Relay Development CA")
            try ca.write(certificateTo: PKI.path(dir, "ca.pem"), keyTo: PKI.path(dir, "ca.key"))
            let issued: [(String, CertificateRequest)] = [
                ("server", .server(commonName: "localhost", sans: [.dns("localhost"), .ip("127.0.0.1"), .ip("::1")])),
                ("billing", .client(commonName: "billing-service", organizationalUnits: ["billing"])),
                ("operator", .client(commonName: "operator", organizationalUnits: ["operators"])),
                ("payments", .client(commonName: "payments-api", sans: [.uri("spiffe://relay.example/payments/api")])),
            ]
            for (name, request) in issued {
                let certificate = try DevelopmentPKI.issue(request, signedBy: ca)
                try certificate.write(certificateTo: PKI.path(dir, "\(name).pem"), keyTo: PKI.path(dir, "\(name).key"))
                print("\(PKI.path(dir, "\(name).pem"))  serial \(certificate.serialNumber)")
            }
            try DevelopmentPKI.writeFile("", to: PKI.path(dir, "revoked.txt"), mode: 0o644)
            try PKI.writeCRL(dir, ca: ca)
            print("\(PKI.path(dir, "ca.pem"))  CA; \(PKI.path(dir, "crl.pem"))  CRL (empty)")
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a client certificate from the CA in DIR.",
            discussion: """
            Writes DIR/NAME.pem and DIR/NAME.key (NAME defaults to the common name) and prints the serial. \
            An existing NAME.pem or NAME.key is replaced only with --force; the names of the CA, the CRL and the server certificate (ca, crl, server) never.

            Examples:
              relayctl pki issue --dir ./pki --cn reporting --ou analytics
              relayctl pki issue --dir ./pki --cn api --uri spiffe://relay.example/payments/api --days 7
            """)

        @Option(name: .long, help: ArgumentHelp("The directory holding ca.pem and ca.key.", valueName: "dir"))
        var dir: String

        @Option(name: .long, help: ArgumentHelp("The common name (CN).", valueName: "name"))
        var cn: String

        @Option(name: .long, help: ArgumentHelp("An organizational unit (repeatable).", valueName: "unit"))
        var ou: [String] = []

        @Option(name: .long, help: ArgumentHelp("A URI SAN, e.g. a SPIFFE ID (repeatable).", valueName: "uri"))
        var uri: [String] = []

        @Option(name: .long, help: ArgumentHelp("A DNS SAN (repeatable).", valueName: "name"))
        var dns: [String] = []

        @Option(name: .long, help: "Validity in days.")
        var days: Int = 365

        @Option(name: .long, help: ArgumentHelp("The file name (without .pem) to write.", valueName: "name"))
        var name: String?

        @Flag(name: .long, help: "Replace an earlier certificate and key of the same name (never the CA, its CRL or the server certificate).")
        var force = false

        /// Names `pki init` gives the CA, its CRL and the broker's certificate:
        /// issuing under them replaced the CA's key with a leaf's (ending the
        /// PKI) or the server certificate with a client one.
        static let reserved: [String: String] = ["ca": "CA", "crl": "CRL", "server": "server certificate"]

        func validate() throws {
            guard days >= 1 else { throw ValidationError("--days must be at least 1") }
        }

        func run() throws {
            let ca = try PKI.loadCA(dir)
            let request = CertificateRequest.client(commonName: cn, organizationalUnits: ou,
                                                    sans: uri.map { .uri($0) } + dns.map { .dns($0) }, days: days)
            let base = name ?? String(cn.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
            if let what = Self.reserved[base] {
                printError("relayctl: \(PKI.path(dir, "\(base).pem")) already holds the PKI's \(what); give the client certificate another file name with --name")
                throw RelayExit.usage.exitCode
            }
            let existing = ["\(base).pem", "\(base).key"].map { PKI.path(dir, $0) }.filter { FileManager.default.fileExists(atPath: $0) }
            if !existing.isEmpty, !force {
                printError("relayctl: \(existing.joined(separator: " and ")) already exist\(existing.count == 1 ? "s" : ""); give another file name with --name, or pass --force to replace \(existing.count == 1 ? "it" : "them")")
                throw RelayExit.usage.exitCode
            }
            let certificate = try DevelopmentPKI.issue(request, signedBy: ca)
            try certificate.write(certificateTo: PKI.path(dir, "\(base).pem"), keyTo: PKI.path(dir, "\(base).key"))
            print("\(PKI.path(dir, "\(base).pem"))  serial \(certificate.serialNumber)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a certificate: add its serial to DIR/revoked.txt and rewrite DIR/crl.pem.",
            discussion: """
            The broker applies the new CRL on reload (SIGHUP or file change) and disconnects sessions \
            of revoked certificates.

            Examples:
              relayctl pki revoke --dir ./pki --serial 3F2A9C01
              relayctl pki revoke --dir ./pki --cert ./pki/billing.pem
            """)

        @Option(name: .long, help: ArgumentHelp("The directory holding ca.pem and ca.key.", valueName: "dir"))
        var dir: String

        @Option(name: .long, help: ArgumentHelp("The serial number to revoke, hex.", valueName: "hex"))
        var serial: String?

        @Option(name: .long, help: ArgumentHelp("Revoke this certificate (reads its serial).", valueName: "pem"))
        var cert: String?

        func validate() throws {
            guard (serial == nil) != (cert == nil) else { throw ValidationError("give exactly one of --serial or --cert") }
        }

        func run() throws {
            let ca = try PKI.loadCA(dir)
            var target = serial ?? ""
            if let cert {
                guard let pem = try? String(contentsOfFile: cert, encoding: .utf8), let identity = try? Identity(pem: pem) else {
                    printError("relayctl: cannot read a certificate from \(cert)")
                    throw RelayExit.noInput.exitCode
                }
                target = identity.serialNumber
            }
            target = target.uppercased()
            guard !target.isEmpty, target.allSatisfy(\.isHexDigit) else {
                printError("relayctl: serial \"\(target)\" is not hexadecimal")
                throw RelayExit.usage.exitCode
            }
            let listPath = PKI.path(dir, "revoked.txt")
            var list = ((try? String(contentsOfFile: listPath, encoding: .utf8)) ?? "")
                .split(whereSeparator: \.isNewline).map(String.init)
            if !list.contains(target) { list.append(target) }
            try DevelopmentPKI.writeFile(list.joined(separator: "\n") + "\n", to: listPath, mode: 0o644)
            try PKI.writeCRL(dir, ca: ca)
            print("revoked \(target); \(PKI.path(dir, "crl.pem")) now lists \(list.count) serial(s)")
        }
    }
}
