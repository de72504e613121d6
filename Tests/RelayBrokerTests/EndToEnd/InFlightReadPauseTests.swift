import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import RelayWire
import Testing

/// configuration.md `max_in_flight`, Protocol/relay-v1.md §4.3: when
/// `max_in_flight` of a connection's PUBs are unanswered relayd stops reading
/// that connection until at most half of them are; only PUBs it had already
/// read can be refused `too_many_in_flight`. A PUB is unanswered until its
/// commit, so the test holds the commits back (``StoreWriteLock``) and looks
/// at what the kernel holds unread on relayd's side of the socket.
@Suite("relayd end to end: reading stops at max_in_flight", .serialized)
struct InFlightReadPauseTests {
    @Test("with max_in_flight PUBs uncommitted relayd leaves the connection's next bytes unread (other connections are served); once the commits go through it reads them: every PUB acknowledged and stored, no PUBERR")
    func readingStopsAtMaxInFlight() async throws {
        try await withRelayd(extra: "[limits]\nmax_in_flight = 8") { relayd in
            let publisher = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            #expect(try await publisher.hello().maxInFlight == 8)
            let bystander = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await bystander.hello()
            #expect(try await bystander.pingBarrier(1) == [])

            let lock = try await StoreWriteLock.acquire(dataDirectory: relayd.dataDirectory)
            defer { lock.release() }

            // The window: eight PUBs in one write. relayd reads them (its socket's
            // receive queue drains) and hands them to the blocked writer.
            try await publisher.channel.writeAndFlush(try Self.publishes(1...8, then: nil, allocator: publisher.channel.allocator))
            let windowRead = await eventually { SocketQueues.unreadBytes(localPort: relayd.port) == 0 }
            #expect(windowRead, "relayd did not read the first \(8) PUBs")

            // Eight more PUBs and a PING, sent while eight are unanswered.
            let more = try Self.publishes(9...16, then: 0x1f1, allocator: publisher.channel.allocator)
            let moreBytes = more.readableBytes
            try await publisher.channel.writeAndFlush(more)
            // The event: the kernel holds them (plus TLS framing) unread on relayd's side.
            let held = await eventuallyValue { () -> Int? in
                guard let unread = SocketQueues.unreadBytes(localPort: relayd.port), unread >= moreBytes else { return nil }
                return unread
            }
            let unreadNow = String(describing: SocketQueues.unreadBytes(localPort: relayd.port))
            #expect(held != nil, "relayd read the PUBs sent past max_in_flight instead of leaving them in the socket (unread now: \(unreadNow), sent \(moreBytes))")
            // Only that connection is paused: another one is read and answered.
            #expect(try await bystander.pingBarrier(2) == [])
            let stillHeld = SocketQueues.unreadBytes(localPort: relayd.port) ?? 0
            #expect(stillHeld >= moreBytes, "the held bytes were read while the window was full (\(stillHeld) left)")
            // Nothing was answered: no PUBACK can come before a commit, and no PUBERR for unread PUBs.
            let early = try await publisher.framesSoFar()
            #expect(early.isEmpty, "frames while the window was full: \(early)")

            lock.release()
            var acknowledged: [UInt64: PublishAck] = [:], refused: [String] = [], pong = false
            while acknowledged.count + refused.count < 16 || !pong {
                switch try await publisher.next() {
                case .publishAck(let ack): acknowledged[ack.publishID] = ack
                case .publishError(let error): refused.append("\(error.publishID): \(error.errorCode?.name ?? "?") \(error.message)")
                case .pong(0x1f1): pong = true
                case let other: throw BrokerTestError.refused("unexpected \(String(describing: other))")
                }
            }
            #expect(refused.isEmpty, "PUBERR for PUBs relayd had not read when the window filled: \(refused)")
            #expect(acknowledged.keys.sorted() == Array(1...16))

            // Everything acknowledged is stored, once, in publish order.
            let reader = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await reader.hello()
            #expect(try await reader.subscribe(1, "flight.pause", from: .earliest).isAccepted)
            let stored = try await reader.messages(16)
            let expectedPayloads = (1...16).map { "p\($0)" }
            let acknowledgedSequences = (1...16).compactMap { acknowledged[UInt64($0)]?.sequence }
            #expect(stored.map(payloadString) == expectedPayloads)
            #expect(stored.map(\.sequence) == acknowledgedSequences)
            #expect(try await reader.pingBarrier() == [], "more than 16 messages are stored")
            for client in [publisher, bystander, reader] { await client.close() }
        }
    }

    /// PUBs `ids` on `flight.pause` (payload `p<id>`), then a PING with `token`, as one buffer.
    static func publishes(_ ids: ClosedRange<UInt64>, then token: UInt64?, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 1024)
        for id in ids {
            try buffer.writeFrame(.publish(Publish(publishID: id, topic: "flight.pause", payload: ByteBuffer(string: "p\(id)"))))
        }
        if let token { try buffer.writeFrame(.ping(token: token)) }
        return buffer
    }
}

extension FrameClient {
    /// The frames that have arrived and are not taken yet, without waiting.
    func framesSoFar() async throws -> [Frame] {
        var frames: [Frame] = []
        while true {
            do {
                guard let frame = try await next(timeout: .zero) else { return frames }
                frames.append(frame)
            } catch FrameClientError.timeout {
                return frames
            }
        }
    }
}

/// Holds LMDB's write lock on a data directory from this process, so the
/// relayd that owns the directory cannot begin a commit until ``release()``
/// (LMDB serialises writers across processes with a mutex in `lock.mdb`).
/// relayd's reads go on; only its writer waits. For tests that must see what
/// relayd does while its publishes are uncommitted.
final class StoreWriteLock: @unchecked Sendable {
    // @unchecked: the semaphores and NSLock are thread-safe; `failure` is
    // written by the holding thread before it signals `entered`.
    private let entered = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)
    private let releasedOnce = NSLock()
    private var isReleased = false
    private var failure: StoreError?

    /// Opens the environment and begins a write transaction on a thread of
    /// its own; returns once the transaction holds the lock.
    static func acquire(dataDirectory: String) async throws -> StoreWriteLock {
        let environment = try Environment(path: dataDirectory, options: EnvironmentOptions())
        let lock = StoreWriteLock()
        let thread = Thread { [lock] in
            var holding = false
            do throws(StoreError) {
                try environment.write { (_) throws(StoreError) -> Void in
                    holding = true
                    lock.entered.signal()
                    lock.released.wait()
                    // Abort, not commit: this process never changes relayd's store.
                    throw StoreError.invalidArgument("released")
                }
            } catch {
                if !holding {
                    lock.failure = error
                    lock.entered.signal()
                }
            }
            environment.close()
        }
        thread.start()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                lock.entered.wait()
                continuation.resume()
            }
        }
        if let failure = lock.failure { throw failure }
        return lock
    }

    /// Lets the transaction end (idempotent).
    func release() {
        releasedOnce.lock()
        defer { releasedOnce.unlock() }
        guard !isReleased else { return }
        isReleased = true
        released.signal()
    }
}
