import NIOCore
import RelayCore

/// Reads one frame's body field by field. Every shortfall names the frame
/// and the field, so a client author can find the bug from the error alone.
struct FrameReader {
    /// The body: everything after type and flags.
    var buffer: ByteBuffer
    let type: FrameType

    @inline(__always)
    func truncated(_ field: StaticString, needs: Int) -> WireError {
        WireError(.protocolViolation,
                  "\(type) frame ends inside \(field) (needs \(needs) bytes, \(buffer.readableBytes) left)")
    }

    @inline(__always)
    mutating func u8(_ field: StaticString) throws(WireError) -> UInt8 {
        guard let v = buffer.readInteger(as: UInt8.self) else { throw truncated(field, needs: 1) }
        return v
    }

    @inline(__always)
    mutating func u16(_ field: StaticString) throws(WireError) -> UInt16 {
        guard let v = buffer.readInteger(as: UInt16.self) else { throw truncated(field, needs: 2) }
        return v
    }

    @inline(__always)
    mutating func u32(_ field: StaticString) throws(WireError) -> UInt32 {
        guard let v = buffer.readInteger(as: UInt32.self) else { throw truncated(field, needs: 4) }
        return v
    }

    @inline(__always)
    mutating func u64(_ field: StaticString) throws(WireError) -> UInt64 {
        guard let v = buffer.readInteger(as: UInt64.self) else { throw truncated(field, needs: 8) }
        return v
    }

    mutating func fingerprint(_ field: StaticString) throws(WireError) -> CertificateFingerprint {
        guard let v = CertificateFingerprint.read(from: &buffer) else { throw truncated(field, needs: 32) }
        return v
    }

    mutating func sessionID() throws(WireError) -> ProducerSessionID {
        guard let (high, low) = buffer.readMultipleIntegers(as: (UInt64, UInt64).self) else {
            throw truncated("session id", needs: 16)
        }
        return ProducerSessionID(high: high, low: low)
    }

    /// str16: validated UTF-8, never repaired. `maxBytes` bounds fields the
    /// spec limits further (client name).
    mutating func string(_ field: StaticString, maxBytes: Int = Int(UInt16.max)) throws(WireError) -> String {
        let length = Int(try u16(field))
        guard length <= buffer.readableBytes else { throw truncated(field, needs: length) }
        guard length <= maxBytes else {
            throw WireError(.protocolViolation, "\(type) \(field) is \(length) bytes; the maximum is \(maxBytes)")
        }
        let at = buffer.readerIndex
        let text: String? = buffer.withUnsafeReadableBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<length])
            guard UTF8Validation.isValid(bytes) else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }
        guard let text else { throw WireError(.invalidUTF8, "\(type) \(field) is not valid UTF-8") }
        buffer.moveReaderIndex(to: at + length)
        return text
    }

    /// HELLO/WELCOME extension list: bounded count, each type once.
    mutating func extensions() throws(WireError) -> [WireExtension] {
        let count = Int(try u16("extension count"))
        if count == 0 { return [] }
        guard count <= FrameLayout.maxExtensions else {
            throw WireError(.protocolViolation,
                            "\(type) has \(count) extensions; the maximum is \(FrameLayout.maxExtensions)")
        }
        var out: [WireExtension] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let extType = try u16("extension type")
            let length = Int(try u16("extension length"))
            guard let value = buffer.readSlice(length: length) else { throw truncated("extension value", needs: length) }
            if out.contains(where: { $0.type == extType }) {
                throw WireError(.protocolViolation, "\(type) repeats extension type \(extType)")
            }
            out.append(WireExtension(type: extType, value: value))
        }
        return out
    }

    /// The rest of the frame (a payload): a slice of the receive buffer, no copy.
    @inline(__always)
    mutating func rest() -> ByteBuffer {
        buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()
    }

    func finish() throws(WireError) {
        guard buffer.readableBytes == 0 else {
            throw WireError(.protocolViolation, "\(type) frame has \(buffer.readableBytes) unexpected trailing bytes")
        }
    }
}
