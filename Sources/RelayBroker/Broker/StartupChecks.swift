import Foundation
import RelayCore
import RelayTLS

extension BrokerConfiguration {
    /// The audit key file: `audit.key_file`, else `audit.key` in the data directory.
    public var auditKeyFile: String {
        audit.keyFile ?? URL(fileURLWithPath: storage.path).appendingPathComponent("audit.key").path
    }

    /// ``AuditTrail`` options from `[audit]`.
    var auditOptions: AuditTrail.Options {
        var options = AuditTrail.Options(keyFile: auditKeyFile)
        options.maxFileSize = audit.maxFileSize
        options.repeatInterval = Double(audit.repeatIntervalNanos) / 1e9
        return options
    }
}

/// What relayd and `relayctl config check` warn about (issue 14 item 15):
/// secrets others can read and listeners exposed on every interface. These
/// are warnings, not errors: the operator may have reasons (a group that
/// runs a sidecar), but must hear about it.
public enum SecurityWarnings {
    public static func check(_ configuration: BrokerConfiguration) -> [String] {
        var warnings: [String] = []
        if let exposure = exposedBits(configuration.tls.privateKey) {
            warnings.append("warning: the TLS private key \(configuration.tls.privateKey) is \(exposure); anyone who reads it can impersonate the broker. Run: chmod 600 \(configuration.tls.privateKey)")
        }
        if configuration.audit.path != nil, let exposure = exposedBits(configuration.auditKeyFile) {
            warnings.append("warning: the audit key \(configuration.auditKeyFile) is \(exposure); anyone who reads it can rewrite the audit trail undetected. Run: chmod 600 \(configuration.auditKeyFile)")
        }
        if let exposure = exposedBits(configuration.storage.path, directory: true) {
            warnings.append("warning: the data directory \(configuration.storage.path) is \(exposure); it holds every stored message. Run: chmod 700 \(configuration.storage.path)")
        }
        warnings += sameNameClientCAs(configuration.tls.clientCA)
        if let listen = configuration.metrics.listen, let colon = listen.lastIndex(of: ":") {
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if ["0.0.0.0", "::", "*", ""].contains(host) {
                warnings.append("warning: metrics listen on \(listen) serves /metrics (unauthenticated, plain HTTP) on every interface; bind it to 127.0.0.1 or a private address unless a firewall guards the port")
            }
        }
        return warnings
    }

    /// Two different CA certificates with one subject in `client_ca`: to
    /// policy (`issuer.<ATTR>`) and to durable owners, which key on the
    /// issuer's name, their clients with the same subject are one identity
    /// (docs/security.md, "Durable cursors"). Fine while a CA is re-keyed
    /// under its old name; otherwise a client of one holds the other's
    /// durables. The same certificate listed twice is not warned about.
    static func sameNameClientCAs(_ files: [String]) -> [String] {
        var first: [String: (file: String, fingerprint: String)] = [:]
        var warnings: [String] = []
        for file in files {
            // Unreadable or not PEM: loading the TLS material reports it.
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for der in PeerCertificateChain(pem: text).derCertificates {
                guard let ca = try? Identity(der: der) else { continue }
                let subject = ca.subject.rfc4514, fingerprint = ca.fingerprintSHA256.hex
                guard let earlier = first[subject] else {
                    first[subject] = (file, fingerprint)
                    continue
                }
                guard earlier.fingerprint != fingerprint else { continue }
                warnings.append("warning: client_ca lists two different CAs with the same subject \(subject) (\(earlier.file) and "
                    + "\(file)); policy's issuer conditions and durable subscriptions cannot tell their clients apart, so a client "
                    + "of one with a subject the other also issued holds the same durables. If this is one CA re-keyed under its "
                    + "old name, remove the old certificate when the rotation is done; otherwise give each CA its own name")
            }
        }
        return warnings
    }

    /// "readable by its group" / "readable by everyone" / …, or nil when private (or absent).
    /// Judges what the path opens, through symlinks (stat, not lstat): the
    /// link's own mode is always 0777, and a key mounted from a Kubernetes
    /// secret (`tls.key -> ..data/tls.key`) was reported "readable by
    /// everyone (mode 0777)" however private the file was.
    static func exposedBits(_ path: String, directory: Bool = false) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        let mode = Int(status.st_mode)
        // A data directory that is a file is refused on its own (StartPathCheck); no chmod advice for it.
        if directory && mode & Int(S_IFMT) != Int(S_IFDIR) { return nil }
        let octal = "mode 0" + String(mode & 0o777, radix: 8)
        let verb = directory ? "open to" : "readable by"
        if mode & 0o007 != 0 { return "\(verb) everyone (\(octal))" }
        if mode & 0o070 != 0 { return "\(verb) its group (\(octal))" }
        return nil
    }
}
