import Foundation
import RelayCore
import RelayTLS

/// The secret that keys the audit trail's chain (HMAC-SHA256).
///
/// Without it nobody can write a line, or a checkpoint, that verifies: a
/// rewrite with recomputed hashes is detected. The file holds 32 random
/// bytes as 64 hex characters (a trailing newline is allowed). relayd creates
/// it (mode 0600, never overwriting) only when neither the key nor a trail
/// exists; docs/security.md says who must be able to read it.
public struct AuditKey: Sendable, Equatable {
    let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(AuditError) {
        guard bytes.count >= 16 else {
            throw AuditError.badKey(path: "", reason: "the key is \(bytes.count) bytes; it needs at least 16 (relayd writes 32)")
        }
        self.bytes = bytes
    }

    /// Reads a key file (hex).
    public static func load(path: String) throws(AuditError) -> AuditKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AuditError.badKey(path: path, reason: "cannot read it; pass the key relayd writes the trail with (audit.key_file)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Hex.decode(text) else {
            throw AuditError.badKey(path: path, reason: "expected hex characters only (relayd writes 64 of them)")
        }
        do { return try AuditKey(bytes: bytes) } catch { throw AuditError.badKey(path: path, reason: "\(error)") }
    }

    /// Loads the key, or creates it when `mayCreate` and the file is absent.
    /// Creation uses O_EXCL so an existing key is never replaced.
    static func loadOrCreate(path: String, mayCreate: Bool) throws(AuditError) -> AuditKey {
        if FileManager.default.fileExists(atPath: path) || !mayCreate { return try load(path: path) }
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AuditError.badKey(path: path, reason: "cannot create it (\(String(cString: strerror(errno)))); check that its folder exists and is writable")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data((Hex.encode(bytes) + "\n").utf8))
            try handle.synchronize()
        } catch {
            throw AuditError.badKey(path: path, reason: "cannot write it: \(error)")
        }
        do { return try AuditKey(bytes: bytes) } catch { throw error }
    }

    /// HMAC-SHA256 (RFC 2104) of `message`, lower-case hex.
    public func mac<Bytes: Collection>(_ message: Bytes) -> String where Bytes.Element == UInt8 {
        let block = 64
        var key = bytes.count > block ? SHA256.digest(bytes) : bytes
        key += [UInt8](repeating: 0, count: block - key.count)
        let inner = SHA256.digest(key.map { $0 ^ 0x36 } + Array(message))
        return Hex.encode(SHA256.digest(key.map { $0 ^ 0x5c } + inner))
    }
}
