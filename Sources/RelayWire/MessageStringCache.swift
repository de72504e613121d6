#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// The topic and publisher principal of the last MSG a decoder read (the
/// topic of the last PUB, for the broker's decoder).
///
/// A subscriber's MSG frames mostly repeat both (one topic, few
/// publishers), and making a `String` of each per frame cost a UTF-8 check,
/// an allocation (a topic over 15 bytes is not stored inline) and a free:
/// a tenth of the client's decoding in the fan-out profile. When the
/// frame's bytes equal the last string's, that string is handed out again;
/// bytes that equal valid UTF-8 are valid, so nothing is checked twice.
public struct MessageStringCache: Sendable {
    var topic: String?
    var principal: String?

    public init() {}
}

extension FrameReader {
    /// ``string(_:maxBytes:)``, returning `cached` when the field's bytes
    /// equal it, and remembering the field otherwise.
    @inline(__always)
    mutating func string(_ field: StaticString, reusing cached: inout String?) throws(WireError) -> String {
        if var last = cached, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
           Int(length) == last.utf8.count, buffer.readableBytes >= 2 + Int(length) {
            let same = last.withUTF8 { lastBytes in
                buffer.withUnsafeReadableBytes { raw in
                    // Both hold `length` bytes (checked above); an empty string has no base address.
                    guard let mine = lastBytes.baseAddress, let theirs = raw.baseAddress else { return lastBytes.isEmpty }
                    return memcmp(theirs + 2, mine, Int(length)) == 0
                }
            }
            if same {
                buffer.moveReaderIndex(forwardBy: 2 + Int(length))
                return last
            }
        }
        let text = try string(field)
        cached = text
        return text
    }
}
