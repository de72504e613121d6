import Foundation
import Testing

/// Reads back what the openssl CLI says of a PEM file, so a test compares
/// Relay's reading of a certificate or CRL with one that is not Relay's code.
public enum OpenSSLCLI {
    /// A date field: `openssl <arguments> -dateopt iso_8601` prints
    /// `field=2027-12-05 00:41:00Z` (e.g. `x509 -noout -enddate`, `crl -noout -nextupdate`).
    public static func date(_ arguments: [String], field: String) async throws -> Date {
        let child = try await ChildProcess("/usr/bin/openssl", arguments + ["-dateopt", "iso_8601"])
        let status = await child.waitForExit(timeout: 30)
        let line = try #require(child.stdoutLines.first { $0.hasPrefix(field + "=") },
                                "openssl \(arguments) (exit \(String(describing: status))): \(child.transcript)")
        let text = line.dropFirst(field.count + 1).replacingOccurrences(of: " ", with: "T")
        return try #require(ISO8601DateFormatter().date(from: text), "openssl printed \(line)")
    }
}

extension OpenSSLCLI {
    /// Writes an empty CRL signed by `issuer` with exactly these lastUpdate
    /// and nextUpdate times (whole seconds, UTC), made by `openssl ca
    /// -gencrl` (OpenSSL 3's `-crl_lastupdate`/`-crl_nextupdate`), not by
    /// Relay's own code: a CRL that lapses at a chosen moment, or one that
    /// already has. Returns `path`.
    @discardableResult
    public static func writeCRL(signedBy issuer: TLSTestPKI.Files, lastUpdate: Date, nextUpdate: Date,
                                to path: String) async throws -> String {
        let scratch = try TemporaryDirectory(prefix: "relay-openssl-ca")
        defer { scratch.remove() }
        let index = scratch.file("index.txt")
        let config = scratch.file("ca.cnf")
        try "".write(toFile: index, atomically: true, encoding: .utf8)
        try "[ca]\ndefault_ca = dev\n[dev]\ndatabase = \(index)\ndefault_md = sha256\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let child = try await ChildProcess("/usr/bin/openssl", [
            "ca", "-batch", "-config", config, "-gencrl", "-cert", issuer.certificate, "-keyfile", issuer.key,
            "-crl_lastupdate", asn1Time(lastUpdate), "-crl_nextupdate", asn1Time(nextUpdate), "-out", path])
        let status = await child.waitForExit(timeout: 30)
        guard status == 0 else {
            throw RelaydFixtureError(message: "openssl ca -gencrl failed (\(String(describing: status))):\n\(child.transcript)")
        }
        return path
    }

    /// `YYYYMMDDHHMMSSZ`, the form openssl's date options take.
    static func asn1Time(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02d%02d%02d%02dZ", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0,
                      parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0)
    }
}
