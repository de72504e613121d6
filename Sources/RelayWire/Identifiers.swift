import NIOCore

/// The SHA-256 fingerprint of a DER certificate: 32 raw bytes on the wire,
/// 64 lower-case hex digits in logs and tools (like `Identity.fingerprintSHA256`).
///
/// Stored as four integers so a decoded MSG carries it without allocating.
public struct CertificateFingerprint: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    /// All zero: "no certificate" (a message the broker itself produced).
    public static let zero = CertificateFingerprint(words: (0, 0, 0, 0))

    private var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    init(words: (UInt64, UInt64, UInt64, UInt64)) {
        (w0, w1, w2, w3) = words
    }

    /// From exactly 32 bytes; nil for any other count.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        var words: [UInt64] = [0, 0, 0, 0]
        for (i, b) in bytes.enumerated() { words[i / 8] = words[i / 8] << 8 | UInt64(b) }
        self.init(words: (words[0], words[1], words[2], words[3]))
    }

    /// From 64 hex digits (either case); nil for anything else.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 2 * Self.byteCount else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.byteCount)
        var i = 0
        while i < digits.count {
            guard let hi = Self.nibble(digits[i]), let lo = Self.nibble(digits[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        self.init(bytes: bytes)
    }

    /// The 32 bytes, in wire order.
    public var bytes: [UInt8] {
        [w0, w1, w2, w3].flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (56 - 8 * $0)) } }
    }

    /// 64 lower-case hex digits.
    public var hex: String {
        let table = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(table[Int(b >> 4)])
            out.append(table[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }

    func write(into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(w0, w1, w2, w3)
    }

    static func read(from buffer: inout ByteBuffer) -> CertificateFingerprint? {
        guard let (a, b, c, d) = buffer.readMultipleIntegers(as: (UInt64, UInt64, UInt64, UInt64).self) else {
            return nil
        }
        return CertificateFingerprint(words: (a, b, c, d))
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

/// HELLO's producer session id: 16 random bytes a publishing client keeps
/// across reconnects, so the broker can recognise a retried PUB. All zero
/// means no session (no deduplication).
public struct ProducerSessionID: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 16
    public static let none = ProducerSessionID(high: 0, low: 0)

    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From exactly 16 bytes; nil for any other count.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { high = high << 8 | UInt64(b) } else { low = low << 8 | UInt64(b) }
        }
        self.init(high: high, low: low)
    }

    /// A new random session id.
    public static func random() -> ProducerSessionID {
        var generator = SystemRandomNumberGenerator()
        var id = ProducerSessionID(high: generator.next(), low: generator.next())
        if id == .none { id.low = 1 }  // astronomically unlikely, but "none" must stay distinct
        return id
    }

    public var isNone: Bool { self == .none }

    /// The 16 bytes, in wire order.
    public var bytes: [UInt8] {
        [high, low].flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (56 - 8 * $0)) } }
    }

    public var description: String {
        let hex = String(high, radix: 16), lowHex = String(low, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + String(repeating: "0", count: 16 - lowHex.count) + lowHex
    }
}
