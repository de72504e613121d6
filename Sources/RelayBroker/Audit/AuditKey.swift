import Foundation
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
        guard let bytes = Self.decodeHex(text) else {
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
            try handle.write(contentsOf: Data((bytes.hexString + "\n").utf8))
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
        return SHA256.digest(key.map { $0 ^ 0x5c } + inner).hexString
    }

    static func decodeHex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Array where Element == UInt8 {
    /// Lower-case hex.
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
