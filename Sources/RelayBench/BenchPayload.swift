import Foundation
import NIOCore

/// The bench's message body: a 20-byte header the subscriber checks, then
/// filler up to the requested size. The header lets every delivery be checked
/// for gaps, duplicates and order, and carries the send time for end-to-end
/// latency (publisher and subscribers share one process, so one clock).
///
/// Layout (big endian): publisher id UInt32, counter UInt64, send time UInt64
/// (monotonic nanoseconds, ``BenchClock/now()``).
public enum BenchPayload {
    public static let headerSize = 20

    public struct Header: Sendable, Hashable {
        public var publisher: UInt32
        public var counter: UInt64
        public var sentAt: UInt64

        public init(publisher: UInt32, counter: UInt64, sentAt: UInt64) {
            self.publisher = publisher
            self.counter = counter
            self.sentAt = sentAt
        }
    }

    /// A payload of exactly `size` bytes (at least ``headerSize``).
    public static func make(_ header: Header, size: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        let total = max(size, headerSize)
        var buffer = allocator.buffer(capacity: total)
        buffer.writeInteger(header.publisher)
        buffer.writeInteger(header.counter)
        buffer.writeInteger(header.sentAt)
        buffer.writeRepeatingByte(UInt8(ascii: "r"), count: total - headerSize)
        return buffer
    }

    /// The header of a received payload, or nil when it is too short to be one of ours.
    public static func parse(_ payload: ByteBuffer) -> Header? {
        guard payload.readableBytes >= headerSize,
              let publisher = payload.getInteger(at: payload.readerIndex, as: UInt32.self),
              let counter = payload.getInteger(at: payload.readerIndex + 4, as: UInt64.self),
              let sentAt = payload.getInteger(at: payload.readerIndex + 12, as: UInt64.self) else { return nil }
        return Header(publisher: publisher, counter: counter, sentAt: sentAt)
    }
}

/// One monotonic clock for every timestamp the bench takes.
public enum BenchClock {
    /// Monotonic nanoseconds (CLOCK_MONOTONIC via Dispatch).
    @inline(__always)
    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
