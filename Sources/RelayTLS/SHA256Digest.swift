import RelayCore
internal import COpenSSL
import RelayCore

/// SHA-256 by the system OpenSSL (EVP_Digest), for the audit trail's
/// HMAC-SHA256 (`AuditKey` in RelayBroker) and anything else that needs a digest of bytes.
public enum SHA256 {
    /// The 32-byte digest of `bytes`.
    public static func digest<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let input = Array(bytes)
        // Lifetime: `input` and `out` are alive for the whole call; EVP_Digest
        // reads `input.count` bytes and writes at most EVP_MAX_MD_SIZE (64)
        // bytes — SHA-256 writes exactly 32, which `out` holds.
        let ok = input.withUnsafeBytes { inPtr in
            out.withUnsafeMutableBytes { outPtr in
                EVP_Digest(inPtr.baseAddress, inPtr.count, outPtr.baseAddress?.assumingMemoryBound(to: UInt8.self),
                           &length, EVP_sha256(), nil)
            }
        }
        // EVP_Digest only fails on allocation failure inside OpenSSL; a zero
        // digest is never a valid chain link, so verification would flag it.
        return ok == 1 ? out : [UInt8](repeating: 0, count: 32)
    }

    /// Lower-case hex of the digest.
    public static func hex<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Hex.encode(digest(bytes))
    }
}
