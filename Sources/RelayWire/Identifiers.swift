import NIOCore
import RelayCore

/// The fingerprint's 32 bytes on the wire (HELLO's WELCOME, MSG): the four
/// words as they are, big-endian.
extension CertificateFingerprint {
    func write(into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(w0, w1, w2, w3)
    }

    static func read(from buffer: inout ByteBuffer) -> CertificateFingerprint? {
        guard let (a, b, c, d) = buffer.readMultipleIntegers(as: (UInt64, UInt64, UInt64, UInt64).self) else {
            return nil
        }
        return CertificateFingerprint(w0: a, w1: b, w2: c, w3: d)
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

    /// 32 lower-case hex digits.
    public var description: String { Hex.encode(bytes) }
}
