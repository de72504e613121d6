/// A log record laid out byte by byte the way writers before the typed
/// fingerprint did (record version 1, docs/storage.md §Record), so tests can
/// build data directories those versions wrote without an old binary: the
/// fingerprint as 32 raw bytes when it was 64 lower-case hex digits, else as
/// its UTF-8 text (flags bit 0 clear), headers as `u16 name, u32 value`.
enum OldFormatRecord {
    static func encode(timestamp: UInt64, topic: String, principal: String, fingerprint: String,
                       headers: [(name: String, value: String)] = [], payload: String) -> [UInt8] {
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        let raw = rawDigest(fingerprint)
        let fingerprintBytes = raw ?? Array(fingerprint.utf8)
        var out: [UInt8] = [1, raw == nil ? 0 : 1] + be(timestamp)
        out += [UInt8(topic.utf8.count)] + Array(topic.utf8)
        out += be(UInt16(principal.utf8.count)) + Array(principal.utf8)
        out += [UInt8(fingerprintBytes.count)] + fingerprintBytes
        out += be(UInt16(headers.count))
        for header in headers {
            out += be(UInt16(header.name.utf8.count)) + Array(header.name.utf8)
            out += be(UInt32(header.value.utf8.count)) + Array(header.value.utf8)
        }
        return out + Array(payload.utf8)
    }

    /// What the old writer's own hex decoder accepted: exactly 64 lower-case digits.
    private static func rawDigest(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(digits[i]), let low = nibble(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }
}
