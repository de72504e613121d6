import Foundation
internal import COpenSSL

// Owned OpenSSL objects. Each class owns exactly one reference to its C
// object and releases it in deinit, so a Swift value's lifetime is the C
// object's lifetime. They are internal: C types never leave RelayTLS.

/// One reference to an X509 certificate.
final class OwnedCertificate: @unchecked Sendable {
    // @unchecked: an X509 is only read after construction; OpenSSL's reference
    // counting of X509 is thread-safe.
    let ref: OpaquePointer
    /// Takes over one reference (from PEM_read/d2i/X509_new or an up_ref).
    init(takingOwnership ref: OpaquePointer) { self.ref = ref }
    deinit { X509_free(ref) }

    /// The DER encoding (i2d_X509 allocates; freed here).
    var der: [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        let length = i2d_X509(ref, &out)
        guard length > 0, let out else { return [] }
        // `out` was allocated by OpenSSL for this call only; copy then free.
        defer { relay_OPENSSL_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    static func fromDER(_ der: [UInt8]) -> OwnedCertificate? {
        der.withUnsafeBufferPointer { buffer -> OwnedCertificate? in
            // d2i advances a copy of the pointer; `buffer` outlives the call.
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            guard let x509 = d2i_X509(nil, &pointer, buffer.count) else { return nil }
            return OwnedCertificate(takingOwnership: x509)
        }
    }
}

/// One reference to an EVP_PKEY.
final class OwnedKey: @unchecked Sendable {
    // @unchecked: keys are immutable after loading.
    let ref: OpaquePointer
    init(takingOwnership ref: OpaquePointer) { self.ref = ref }
    deinit { EVP_PKEY_free(ref) }
}

/// One reference to an X509_CRL.
final class OwnedCRL: @unchecked Sendable {
    // @unchecked: CRLs are immutable after loading.
    let ref: OpaquePointer
    init(takingOwnership ref: OpaquePointer) { self.ref = ref }
    deinit { X509_CRL_free(ref) }
}

/// The OpenSSL error queue of this thread, drained into one line.
enum OpenSSLErrorQueue {
    static func drain() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            messages.append(describe(code))
        }
        return messages.isEmpty ? "no detail from OpenSSL" : messages.joined(separator: "; ")
    }

    static func clear() { ERR_clear_error() }

    /// OpenSSL's reason string for an error code (static storage, not freed).
    static func describe(_ code: UInt) -> String {
        if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Where PEM text comes from: a file, or memory (with a name for errors).
public enum PEMSource: Sendable, Hashable, CustomStringConvertible {
    case file(String)
    case memory(String, name: String)

    /// Shorthand for in-memory PEM named "<in-memory PEM>".
    public static func pem(_ text: String) -> PEMSource { .memory(text, name: "<in-memory PEM>") }

    public var description: String {
        switch self {
        case .file(let path): return path
        case .memory(_, let name): return name
        }
    }

    func bytes() throws(TLSConfigurationError) -> [UInt8] {
        switch self {
        case .memory(let text, _):
            return Array(text.utf8)
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "permission denied or not a regular file" : "no such file"
                throw .unreadableFile(path: path, reason: reason)
            }
            return [UInt8](data)
        }
    }
}

/// Reads PEM blocks from bytes through a read-only memory BIO.
enum PEMReader {
    /// Runs `body` with a memory BIO over `bytes`; the BIO borrows the
    /// buffer, so it is freed before the closure's buffer goes away.
    private static func withBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) -> T) -> T? {
        bytes.withUnsafeBytes { raw -> T? in
            guard let base = raw.baseAddress, let bio = BIO_new_mem_buf(base, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return body(bio)
        }
    }

    static func certificates(_ source: PEMSource) throws(TLSConfigurationError) -> [OwnedCertificate] {
        try readAll(source, orThrow: .noCertificate(source: source.description), converter: "x509") { bio in
            relay_PEM_read_bio_X509(bio).map(OwnedCertificate.init(takingOwnership:))
        }
    }

    static func privateKey(_ source: PEMSource) throws(TLSConfigurationError) -> OwnedKey {
        let keys = try readAll(source, orThrow: .noPrivateKey(source: source.description), converter: "pkey") { bio in
            relay_PEM_read_bio_PrivateKey(bio).map(OwnedKey.init(takingOwnership:))
        }
        guard let key = keys.first else { throw .noPrivateKey(source: source.description) }
        return key
    }

    static func crls(_ source: PEMSource) throws(TLSConfigurationError) -> [OwnedCRL] {
        try readAll(source, orThrow: .noCRL(source: source.description), converter: "crl") { bio in
            relay_PEM_read_bio_X509_CRL(bio).map(OwnedCRL.init(takingOwnership:))
        }
    }

    /// Every block `read` takes from `source`, in order. When there is none:
    /// `encryptedPrivateKey` for a passphrase-protected key (never prompted
    /// for: the shim's callback refuses), `derEncoded` for binary DER (an
    /// ASN.1 SEQUENCE, the form CAs often publish, with the `openssl
    /// <converter>` command that makes PEM of it), else `missing`.
    private static func readAll<T>(_ source: PEMSource, orThrow missing: TLSConfigurationError, converter: String,
                                   _ read: (OpaquePointer) -> T?) throws(TLSConfigurationError) -> [T] {
        let bytes = try source.bytes()
        OpenSSLErrorQueue.clear()
        let items = withBIO(bytes) { bio -> [T] in
            var out: [T] = []
            while let item = read(bio) { out.append(item) }
            return out
        } ?? []
        // Reading stops with a "no start line" error at the end: expected.
        OpenSSLErrorQueue.clear()
        guard items.isEmpty else { return items }
        let text = String(decoding: bytes, as: UTF8.self)
        if converter == "pkey" && (text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED")) {
            throw .encryptedPrivateKey(source: source.description)
        }
        if bytes.first == 0x30 && !text.contains("-----BEGIN ") {
            throw .derEncoded(source: source.description, converter: converter)
        }
        throw missing
    }
}

/// Reads everything a memory BIO holds as a String (for PEM output).
func readAllString(from bio: OpaquePointer) -> String {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = BIO_read(bio, &chunk, Int32(chunk.count))
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<Int(n)])
    }
    return String(decoding: bytes, as: UTF8.self)
}
