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
        // One write for the header, not three (each ByteBuffer write is ~107
        // instructions of checks, a third of this function at 128 bytes).
        buffer.writeWithOutputRawSpan(minimumWritableBytes: headerSize) { span in
            span.append(header.publisher.bigEndian, as: UInt32.self)
            span.append(header.counter.bigEndian, as: UInt64.self)
            span.append(header.sentAt.bigEndian, as: UInt64.self)
        }
        buffer.writeRepeatingByte(UInt8(ascii: "r"), count: total - headerSize)
        return buffer
    }

    /// Payload buffers reused in turn, so a steady run allocates none: a
    /// new buffer per message was two allocations (the storage object and
    /// its bytes) and their release, ~600 instructions of the Swift
    /// client's ~8,600 per message (wave 22). Every payload is written in
    /// full, header and filler, exactly as ``make(_:size:allocator:)``
    /// writes it. A slot's previous payload may still be held (the client
    /// keeps it until its PUBACK, to re-send after a reconnect): the
    /// rewrite then goes to a new buffer (`ByteBuffer`'s copy on write) and
    /// the held one is not touched. Not thread-safe: one sender at a time.
    public struct Ring {
        private var slots: [ByteBuffer]
        private var next = 0
        private let total: Int

        /// `slots` buffers of `size` bytes (at least ``headerSize``); more
        /// slots than payloads in flight (2 × the window) keep a slot's
        /// last payload released by the time its turn comes again.
        public init(slots: Int, size: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
            total = max(size, headerSize)
            self.slots = (0..<max(1, slots)).map { _ in allocator.buffer(capacity: max(size, headerSize)) }
        }

        /// The payload of `header`: the same bytes as ``BenchPayload/make(_:size:allocator:)``.
        public mutating func make(_ header: Header) -> ByteBuffer {
            let index = next
            next = index + 1 == slots.count ? 0 : index + 1
            let filler = total - headerSize
            // In place through the array's element: unique unless the client
            // still holds the last payload (then the write copies first).
            slots[index].moveWriterIndex(to: 0)
            slots[index].writeWithOutputRawSpan(minimumWritableBytes: total) { span in
                span.append(header.publisher.bigEndian, as: UInt32.self)
                span.append(header.counter.bigEndian, as: UInt64.self)
                span.append(header.sentAt.bigEndian, as: UInt64.self)
                span.append(repeating: UInt8(ascii: "r"), count: filler, as: UInt8.self)
            }
            return slots[index]
        }
    }

    /// The header of a received payload, or nil when it is too short to be one of ours.
    public static func parse(_ payload: ByteBuffer) -> Header? {
        // One read of the three fields, not three (each went through memcpy).
        guard let (publisher, counter, sentAt) = payload.getMultipleIntegers(
            at: payload.readerIndex, as: (UInt32, UInt64, UInt64).self) else { return nil }
        return Header(publisher: publisher, counter: counter, sentAt: sentAt)
    }
}

/// One monotonic clock for every timestamp the bench takes.
public enum BenchClock {
    /// Monotonic nanoseconds (CLOCK_MONOTONIC). Read directly: through
    /// `DispatchTime.now().uptimeNanoseconds` it was ~130 instructions a call
    /// (`dispatch_time` and the Swift overlay around the same clock), and a
    /// 1:1 run reads it three times per message (send, receipt, delivery; wave 12).
    @inline(__always)
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
