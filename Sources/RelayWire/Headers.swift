import NIOCore

/// One message header. Order and repeated keys are preserved end to end.
public struct HeaderField: Hashable, Sendable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    /// The spec calls it a key; the old name stays for callers that used it.
    public var name: String { key }
}

/// A message's header block, kept as the encoded bytes it arrived in.
///
/// The broker never needs headers as Swift values: it checks them and
/// forwards them. So decoding a PUB validates the block in one pass (lengths,
/// UTF-8, and the facts ``OperationValidation`` needs) and keeps it as a
/// slice of the receive buffer. The store keeps the same bytes (RelayStore's
/// `HeaderBlock`) and MSG frames, live and replayed, copy them verbatim
/// (``init(validated:count:)``). Iterating decodes each field on demand.
public struct Headers: Collection, Hashable, Sendable, ExpressibleByArrayLiteral {
    /// The encoded fields after the u16 count: per header `str16 key, str16 value`.
    public let encoded: ByteBuffer
    /// The number of headers.
    public let count: Int
    /// Key and value bytes in total (what `max_header_bytes` limits).
    public let contentBytes: Int
    /// True when every key is 1–255 bytes of `A-Z a-z 0-9 - _ .`.
    public let keysAreValid: Bool

    /// No headers.
    public static let empty = Headers(encoded: ByteBuffer(), count: 0, contentBytes: 0, keysAreValid: true)

    init(encoded: ByteBuffer, count: Int, contentBytes: Int, keysAreValid: Bool) {
        self.encoded = encoded
        self.count = count
        self.contentBytes = contentBytes
        self.keysAreValid = keysAreValid
    }

    /// A block the broker validated when it decoded the PUB, handed back as
    /// bytes by the live fan-out or the store. It is not validated again:
    /// anything not from a decoded PUB goes through the frame decoder or
    /// ``init(_:)``.
    public init(validated encoded: ByteBuffer, count: Int) {
        self.init(encoded: encoded, count: count, contentBytes: encoded.readableBytes - 4 * count, keysAreValid: true)
    }

    /// Encodes `fields`. Throws when a key or value exceeds 65,535 bytes or
    /// there are more than 65,535 fields, which the wire cannot express.
    public init(_ fields: some Sequence<HeaderField>) throws(WireError) {
        var buffer = ByteBuffer()
        var count = 0, content = 0, keysValid = true
        for field in fields {
            let key = field.key.utf8.count, value = field.value.utf8.count
            guard key <= Int(UInt16.max), value <= Int(UInt16.max) else {
                throw WireError(.internalError, "header \(count + 1) key or value exceeds 65535 bytes")
            }
            buffer.writeInteger(UInt16(key))
            buffer.writeString(field.key)
            buffer.writeInteger(UInt16(value))
            buffer.writeString(field.value)
            keysValid = keysValid && Headers.isValidKey(field.key.utf8)
            count += 1
            content += key + value
        }
        guard count <= Int(UInt16.max) else { throw WireError(.internalError, "\(count) headers; at most 65535 fit") }
        self.init(encoded: buffer, count: count, contentBytes: content, keysAreValid: keysValid)
    }

    /// Convenience for literals in tests and tools. A literal holding a key
    /// or value over 65,535 bytes (which the wire cannot carry) yields no
    /// headers; use ``init(_:)`` to get the error instead.
    public init(arrayLiteral elements: (String, String)...) {
        let fields = elements.map { HeaderField(key: $0.0, value: $0.1) }
        self = (try? Headers(fields)) ?? .empty
    }

    /// Keys are 1–255 bytes of `A-Z a-z 0-9 - _ .` (Protocol/relay-v1.md §3).
    public static func isValidKey<Bytes: Collection>(_ key: Bytes) -> Bool where Bytes.Element == UInt8 {
        let n = key.count
        return n >= 1 && n <= 255 && key.allSatisfy(isKeyByte)
    }

    @inline(__always)
    static func isKeyByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    // MARK: Collection, by byte offset into `encoded`

    public struct Index: Comparable, Hashable, Sendable {
        let offset: Int
        public static func < (lhs: Index, rhs: Index) -> Bool { lhs.offset < rhs.offset }
    }

    public var startIndex: Index { Index(offset: 0) }
    public var endIndex: Index { Index(offset: encoded.readableBytes) }
    public var isEmpty: Bool { count == 0 }

    public func index(after i: Index) -> Index {
        let keyAt = encoded.readerIndex + i.offset
        let keyLength = Int(encoded.getInteger(at: keyAt, as: UInt16.self) ?? 0)
        let valueAt = keyAt + 2 + keyLength
        let valueLength = Int(encoded.getInteger(at: valueAt, as: UInt16.self) ?? 0)
        return Index(offset: Swift.min(i.offset + 4 + keyLength + valueLength, encoded.readableBytes))
    }

    public subscript(position: Index) -> HeaderField {
        // The block was validated when it was decoded or built, so the reads
        // cannot fail; the fallbacks only keep a misuse from trapping.
        let keyAt = encoded.readerIndex + position.offset
        let keyLength = Int(encoded.getInteger(at: keyAt, as: UInt16.self) ?? 0)
        let key = encoded.getString(at: keyAt + 2, length: keyLength) ?? ""
        let valueAt = keyAt + 2 + keyLength
        let valueLength = Int(encoded.getInteger(at: valueAt, as: UInt16.self) ?? 0)
        let value = encoded.getString(at: valueAt + 2, length: valueLength) ?? ""
        return HeaderField(key: key, value: value)
    }

    /// The values of every header with this key, in order.
    public func values(for key: String) -> [String] {
        filter { $0.key == key }.map(\.value)
    }

    /// Bytes the block takes on the wire, count included.
    var wireSize: Int { 2 + encoded.readableBytes }

    func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(truncatingIfNeeded: count))
        buffer.writeImmutableBuffer(encoded)
    }

    // Equality is by content: two blocks holding the same fields are equal.
    public static func == (lhs: Headers, rhs: Headers) -> Bool {
        lhs.count == rhs.count && lhs.encoded == rhs.encoded
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        hasher.combine(encoded)
    }
}

extension FrameReader {
    /// Reads and validates a header block in one pass without allocating:
    /// structure and UTF-8 here (connection-level errors); count, key grammar
    /// and size are recorded for ``OperationValidation`` (operation-level).
    mutating func headers() throws(WireError) -> Headers {
        let count = Int(try u16("header count"))
        if count == 0 { return .empty }
        let start = buffer.readerIndex
        let end = buffer.writerIndex
        var at = start, content = 0, keysValid = true
        for index in 0..<count {
            for part in 0..<2 {
                let isKey = part == 0
                guard at + 2 <= end, let length16 = buffer.getInteger(at: at, as: UInt16.self) else {
                    throw truncated(isKey ? "header key" : "header value", index: index)
                }
                let length = Int(length16)
                guard at + 2 + length <= end else {
                    throw truncated(isKey ? "header key" : "header value", index: index)
                }
                guard buffer.isValidUTF8(at: at + 2, length: length) else {
                    throw WireError(.invalidUTF8, "\(type) header \(index + 1) \(isKey ? "key" : "value") is not valid UTF-8")
                }
                if isKey, keysValid {
                    keysValid = length >= 1 && length <= 255
                        && buffer.withUnsafeReadableBytes { raw in
                            raw[(at + 2 - start)..<(at + 2 - start + length)].allSatisfy(Headers.isKeyByte)
                        }
                }
                content += length
                at += 2 + length
            }
        }
        guard let block = buffer.readSlice(length: at - start) else {
            throw WireError(.protocolViolation, "\(type) header block is inconsistent")
        }
        return Headers(encoded: block, count: count, contentBytes: content, keysAreValid: keysValid)
    }

    private func truncated(_ field: String, index: Int) -> WireError {
        WireError(.protocolViolation, "\(type) frame ends inside \(field) \(index + 1) (\(buffer.readableBytes) header bytes follow)")
    }
}
