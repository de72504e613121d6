#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import RelayCore

extension RelayFrameDecoder {
    /// The MSG at the front of `buffer`, decoded in place, when it is
    /// complete, within the limit, has no headers and carries the same topic
    /// and principal bytes as the previous MSG (those were validated then
    /// and are reused as they are, ``MessageStringCache``). That is nearly
    /// every MSG of a subscription's stream, and it skips what a client's
    /// profile showed per MSG: the ``Frame`` enum around the message (copied
    /// and destroyed), the field-by-field reader and the header block.
    ///
    /// Nil, consuming nothing, for anything else: ``decodeFrame(_:)`` then
    /// decodes it with every check (and remembers a new topic or principal).
    /// A frame this accepts is one ``decodeFrame(_:)`` accepts, decoded to
    /// the same ``Message``.
    @inline(__always)
    mutating func decodeRepeatedMessage(_ buffer: inout ByteBuffer) -> Message? {
        // Borrowed for the comparisons, copied once into the message (a
        // `var` copy for `withUTF8` was two more retains and releases per MSG).
        guard greeted, role == .client, let topic = strings.topic, let principal = strings.principal else { return nil }
        let start = buffer.readerIndex
        guard let (length32, type, flags, id, sequence, timestamp) = buffer.getMultipleIntegers(
            at: start, as: (UInt32, UInt8, UInt8, UInt32, UInt64, UInt64).self) else { return nil }
        let length = Int(length32)
        guard type == FrameType.message.rawValue, flags & ~FrameType.message.definedFlags == 0,
              length <= currentMaxFrameSize, buffer.readableBytes >= 4 + length else { return nil }
        let end = start + 4 + length
        var at = start + 4 + FrameLayout.typeAndFlagsSize + 4 + 16
        guard Self.field(of: buffer, at: &at, end: end, equals: topic),
              Self.field(of: buffer, at: &at, end: end, equals: principal),
              end - at >= CertificateFingerprint.byteCount + 2,
              let (w0, w1, w2, w3, headerCount) = buffer.getMultipleIntegers(
                  at: at, as: (UInt64, UInt64, UInt64, UInt64, UInt16).self),
              headerCount == 0 else { return nil }
        at += CertificateFingerprint.byteCount + 2
        guard let payload = buffer.getSlice(at: at, length: end - at) else { return nil }
        buffer.moveReaderIndex(to: end)
        return Message(subscriptionID: id, sequence: sequence, timestamp: timestamp, topic: topic, publisherPrincipal: principal,
                       publisherFingerprint: CertificateFingerprint(w0: w0, w1: w1, w2: w2, w3: w3), headers: .empty,
                       payload: payload, replayed: flags & Message.replayedFlag != 0)
    }

    /// True, moving `at` past it, when the str16 at `at` (before `end`) holds `string`'s bytes.
    @inline(__always)
    private static func field(of buffer: ByteBuffer, at: inout Int, end: Int, equals string: String) -> Bool {
        guard let length = buffer.getInteger(at: at, as: UInt16.self).map(Int.init),
              length == string.utf8.count, end - at >= 2 + length else { return false }
        let offset = at + 2 - buffer.readerIndex
        // Every native string (and every string the decoder made) has its
        // UTF-8 contiguous; nil otherwise, and the full decoder takes it.
        let same = string.utf8.withContiguousStorageIfAvailable { mine in
            buffer.withUnsafeReadableBytes { raw in
                // Both hold `length` bytes (checked above); an empty string has no base address.
                guard let mine = mine.baseAddress, let theirs = raw.baseAddress else { return length == 0 }
                return memcmp(theirs + offset, mine, length) == 0
            }
        } ?? false
        if same { at += 2 + length }
        return same
    }
}

extension RelayFrameDecoder {
    /// The broker's counterpart of ``decodeRepeatedMessage(_:)``: the PUB at
    /// the front of `buffer`, decoded in place, when it is complete, within
    /// the limit, has no headers and carries the same topic bytes as the
    /// previous PUB (validated UTF-8 then, reused as they are). That is
    /// nearly every PUB of a publisher's stream; it skips the ``Frame`` enum
    /// around it (copied and destroyed: ~250 instructions per PUB in the
    /// wave 9 profile) and the field-by-field reader.
    ///
    /// Nil, consuming nothing, for anything else: ``decodeFrame(_:)`` then
    /// decodes it with every check. A frame this accepts is one
    /// ``decodeFrame(_:)`` accepts, decoded to the same ``Publish``.
    @inline(__always)
    mutating func decodeRepeatedPublish(_ buffer: inout ByteBuffer) -> Publish? {
        guard greeted, role == .broker, let topic = strings.topic else { return nil }
        let start = buffer.readerIndex
        guard let (length32, type, flags, id) = buffer.getMultipleIntegers(
            at: start, as: (UInt32, UInt8, UInt8, UInt64).self) else { return nil }
        let length = Int(length32)
        guard type == FrameType.publish.rawValue, flags & ~FrameType.publish.definedFlags == 0,
              length <= currentMaxFrameSize, buffer.readableBytes >= 4 + length else { return nil }
        let end = start + 4 + length
        var at = start + 4 + FrameLayout.typeAndFlagsSize + 8
        guard at <= end, Self.field(of: buffer, at: &at, end: end, equals: topic),
              end - at >= 2, buffer.getInteger(at: at, as: UInt16.self) == 0 else { return nil }
        at += 2
        guard let payload = buffer.getSlice(at: at, length: end - at) else { return nil }
        buffer.moveReaderIndex(to: end)
        return Publish(publishID: id, topic: topic, headers: .empty, payload: payload)
    }
}
