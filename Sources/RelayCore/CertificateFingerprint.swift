/// The SHA-256 of a DER certificate: the one representation of a
/// certificate fingerprint from identity extraction (RelayTLS) through HELLO,
/// the store's record and dedup keys, replay and MSG encoding.
///
/// Four big-endian words, so a copy is 32 bytes inline and never allocates;
/// the wire and the store write these 32 bytes as they are. Text (64
/// lower-case hex digits, ``hex``) exists only at the edges: logs, the audit
/// trail, policy attributes, JSON and the CLI.
public struct CertificateFingerprint: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    /// All zero: "no certificate" (a message the broker itself produced).
    public static let zero = CertificateFingerprint(w0: 0, w1: 0, w2: 0, w3: 0)

    /// Bytes 0–7, 8–15, 16–23 and 24–31, big-endian.
    public let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        (self.w0, self.w1, self.w2, self.w3) = (w0, w1, w2, w3)
    }

    /// From exactly 32 bytes; nil for any other count.
    ///
    /// Inlinable so that it is specialised for the caller's collection: the
    /// unspecialised generic walk (through `EnumeratedSequence`'s witnesses)
    /// cost ~55,000 instructions per fingerprint, ~1 % of a handshake on each
    /// side (identity extraction; wave 15).
    @inlinable
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (i, b) in bytes.enumerated() {
            switch i >> 3 {
            case 0: w.0 = w.0 << 8 | UInt64(b)
            case 1: w.1 = w.1 << 8 | UInt64(b)
            case 2: w.2 = w.2 << 8 | UInt64(b)
            default: w.3 = w.3 << 8 | UInt64(b)
            }
        }
        self.init(w0: w.0, w1: w.1, w2: w.2, w3: w.3)
    }

    /// From 64 hex digits (either case); nil for anything else.
    public init?<Text: StringProtocol>(hex: Text) {
        guard hex.utf8.count == 2 * Self.byteCount, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    /// Calls `body` with the 32 bytes in wire order, from the stack.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var words = (w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)
        return try Swift.withUnsafeBytes(of: &words) { (raw) throws(E) -> R in try body(raw) }
    }

    /// The 32 bytes in wire order.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// 64 lower-case hex digits: the fingerprint as logs, audit lines, policy and tools show it.
    public var hex: String { withUnsafeBytes { Hex.encode($0) } }

    public var description: String { hex }
}
