// Shared by the relay-fuzz-certificate-identity target and the corpus replay
// test (Tests/RelayTLSTests/DERCorpus/ links to this file): one set of checks.
import Foundation
import RelayCore
import RelayTLS

/// One input is DER bytes. They go through `Identity(der:)`, which parses
/// with OpenSSL (d2i_X509) and extracts fields with the same
/// `IdentityExtractor` the TLS handler runs on a verified peer certificate.
///
/// Invariants, besides "never crashes, never leaks, never reads out of
/// bounds" (ASan in the fuzz build; OpenSSL itself is not instrumented, but
/// ASan's interceptors still see its memcpy/strlen on our buffers):
/// - a failure is an ``IdentityExtractionError``;
/// - an accepted certificate yields the same identity through the PEM path
///   (`Identity(pem:)`, what `relayctl acl explain --cert` reads);
/// - the fingerprint is 64 lower-case hex digits, the serial is normalised
///   upper-case hex;
/// - a SPIFFE ID is present only when exactly one URI SAN has the scheme
///   `spiffe` (in any letter case: RFC 3986 schemes are case-insensitive),
///   and it is that URI.
enum CertificateIdentityInvariants {
    static func violations(_ input: UnsafeRawBufferPointer) -> [String] {
        let der = [UInt8](input)
        let identity: Identity
        do {
            identity = try Identity(der: der)
        } catch {
            return error.description.isEmpty ? ["an extraction error without a description"] : []
        }
        var out: [String] = []
        let hex = UInt8(ascii: "0")...UInt8(ascii: "9")
        let lower = UInt8(ascii: "a")...UInt8(ascii: "f")
        let upper = UInt8(ascii: "A")...UInt8(ascii: "F")
        let fingerprint = identity.fingerprintSHA256.hex.utf8
        if fingerprint.count != 64 || !fingerprint.allSatisfy({ hex.contains($0) || lower.contains($0) }) {
            out.append("fingerprint '\(identity.fingerprintSHA256)' is not 64 lower-case hex digits")
        }
        let serial = identity.serialNumber.hasPrefix("-") ? identity.serialNumber.dropFirst() : identity.serialNumber[...]
        if serial.isEmpty || !serial.utf8.allSatisfy({ hex.contains($0) || upper.contains($0) })
            || (serial.count > 1 && serial.hasPrefix("0")) {
            out.append("serial '\(identity.serialNumber)' is not normalised upper-case hex")
        }
        // Written apart from the extractor's own check: a byte-wise
        // comparison, letters of the scheme in either case, `://` exact.
        let spiffeURIs = identity.sans.uri.filter { uri in
            let head = Array(uri.utf8.prefix(9)), scheme = Array("spiffe://".utf8)
            return head.count == 9 && head.indices.allSatisfy { index in
                head[index] == scheme[index] || (scheme[index] >= 0x61 && scheme[index] <= 0x7A && head[index] == scheme[index] - 0x20)
            }
        }
        if let spiffe = identity.spiffe {
            if spiffeURIs != [spiffe.uri] {
                out.append("SPIFFE ID \(spiffe.uri) with URI SANs \(identity.sans.uri)")
            }
        } else if spiffeURIs.count == 1, SPIFFEID(uri: spiffeURIs[0]) != nil {
            out.append("a valid single SPIFFE URI SAN \(spiffeURIs[0]) gave no SPIFFE ID")
        }
        let pem = "-----BEGIN CERTIFICATE-----\n"
            + Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            + "\n-----END CERTIFICATE-----\n"
        do {
            let again = try Identity(pem: pem)
            if again != identity { out.append("the PEM path extracted a different identity: \(again) vs \(identity)") }
        } catch {
            out.append("DER accepted but the same bytes as PEM were refused: \(error)")
        }
        return out
    }
}
