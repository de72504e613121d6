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
