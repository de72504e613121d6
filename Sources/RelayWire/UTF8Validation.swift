import NIOCore

/// Well-formed UTF-8 check (Unicode §3.9, table 3-7) without building a String.
///
/// Header blocks are checked once when decoded and then forwarded as bytes,
/// so they need a validator that allocates nothing. Rejects overlong forms,
/// surrogates, code points above U+10FFFF and truncated sequences. Text is
/// never repaired: a replacement character could make two different byte
/// strings compare equal.
enum UTF8Validation {
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let n = bytes.count
        var i = 0
        while i < n {
            // ASCII fast path, 8 bytes at a time: topics, keys and most values are ASCII.
            while i + 8 <= n, base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            guard i < n else { return true }
            let b0 = base.load(fromByteOffset: i, as: UInt8.self)
            if b0 < 0x80 {
                i += 1
                continue
            }
            @inline(__always) func at(_ k: Int) -> UInt8 { base.load(fromByteOffset: i + k, as: UInt8.self) }
            @inline(__always) func isContinuation(_ b: UInt8) -> Bool { b & 0xC0 == 0x80 }
            switch b0 {
            case 0xC2...0xDF:
                guard i + 1 < n, isContinuation(at(1)) else { return false }
                i += 2
            case 0xE0...0xEF:
                guard i + 2 < n else { return false }
                let b1 = at(1)
                let secondOK: Bool
                switch b0 {
                case 0xE0: secondOK = (0xA0...0xBF).contains(b1)   // no overlong 3-byte forms
                case 0xED: secondOK = (0x80...0x9F).contains(b1)   // no surrogates
                default: secondOK = isContinuation(b1)
                }
                guard secondOK, isContinuation(at(2)) else { return false }
                i += 3
            case 0xF0...0xF4:
                guard i + 3 < n else { return false }
                let b1 = at(1)
                let secondOK: Bool
                switch b0 {
                case 0xF0: secondOK = (0x90...0xBF).contains(b1)   // no overlong 4-byte forms
                case 0xF4: secondOK = (0x80...0x8F).contains(b1)   // nothing above U+10FFFF
                default: secondOK = isContinuation(b1)
                }
                guard secondOK, isContinuation(at(2)), isContinuation(at(3)) else { return false }
                i += 4
            default:
                return false  // a continuation byte first, C0/C1 (overlong) or F5...FF
            }
        }
        return true
    }
}

extension ByteBuffer {
    /// Is `length` bytes at `index` well-formed UTF-8? The range must be readable.
    @inline(__always)
    func isValidUTF8(at index: Int, length: Int) -> Bool {
        withUnsafeReadableBytes { raw in
            let start = index - readerIndex
            return UTF8Validation.isValid(UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]))
        }
    }
}
