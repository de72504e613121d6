import RelayCore
import Testing

/// The one fingerprint type and the one hex codec.
@Suite struct CertificateFingerprintTests {
    static let bytes: [UInt8] = (0..<32).map { UInt8($0 * 7 + 1) }

    @Test("32 bytes round-trip through the type, its hex and back; the words are big-endian")
    func roundTrip() throws {
        let fingerprint = try #require(CertificateFingerprint(bytes: Self.bytes))
        #expect(fingerprint.bytes == Self.bytes)
        #expect(fingerprint.w0 == 0x0108_0F16_1D24_2B32)
        #expect(fingerprint.hex == Hex.encode(Self.bytes))
        #expect(fingerprint.hex.count == 64 && fingerprint.hex == fingerprint.hex.lowercased())
        #expect(CertificateFingerprint(hex: fingerprint.hex) == fingerprint)
        #expect(CertificateFingerprint(hex: fingerprint.hex.uppercased()) == fingerprint)
        #expect(fingerprint.withUnsafeBytes { Array($0) } == Self.bytes)
    }

    @Test("anything but 32 bytes or 64 hex digits is refused")
    func wrongSizesAreRefused() {
        #expect(CertificateFingerprint(bytes: Self.bytes.dropLast()) == nil)
        #expect(CertificateFingerprint(bytes: Self.bytes + [0]) == nil)
        let hex = Hex.encode(Self.bytes)
        #expect(CertificateFingerprint(hex: String(hex.dropLast(2))) == nil)
        #expect(CertificateFingerprint(hex: hex + "00") == nil)
        #expect(CertificateFingerprint(hex: String(hex.dropLast()) + "g") == nil)
        #expect(CertificateFingerprint(hex: "") == nil)
    }

    @Test("a fingerprint is 32 bytes inline: copying it allocates nothing")
    func inlineValue() {
        #expect(MemoryLayout<CertificateFingerprint>.size == 32)
        #expect(_isPOD(CertificateFingerprint.self))
    }

    @Test("Hex decodes either case and refuses odd lengths, empty text and non-digits")
    func hexCodec() {
        #expect(Hex.decode("00fFa0") == [0x00, 0xFF, 0xA0])
        #expect(Hex.encode([0x00, 0xFF, 0xA0]) == "00ffa0")
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("") == nil)
        #expect(Hex.decode("0x") == nil)
        #expect(Hex.decode("é0") == nil)
    }
}
