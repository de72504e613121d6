import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import RelayBench

/// The open loop's pacing thread asks for no timer slack, so its sleeps end
/// at each message's due time rather than up to 50 µs later (docs/performance-history.md
/// "Low-load tail (wave 8)"). The slack is per thread: it must be this thread's.
@Suite("Bench pacer timer slack")
struct PacerTimerSlackTests {
    /// This thread's timer slack in nanoseconds, from /proc/<tid>/timerslack_ns.
    static func ownSlack() -> String? {
        var link = [CChar](repeating: 0, count: 64)
        let length = readlink("/proc/thread-self", &link, 63)
        guard length > 0,
              let tid = String(decoding: link.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                  .split(separator: "/").last else { return nil }
        return try? String(contentsOfFile: "/proc/\(tid)/timerslack_ns", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("wakeOnTime sets the calling thread's timer slack to 1 ns and leaves other threads alone")
    func pacerThreadHasNoSlack() throws {
        let result = NIOLockedValueBox<(before: String?, after: String?)>((nil, nil))
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let first = Self.ownSlack()
            PublishDriver.wakeOnTime()
            let second = Self.ownSlack()
            result.withLockedValue { $0 = (first, second) }
            done.signal()
        }
        thread.start()
        done.wait()
        let (was, now) = result.withLockedValue { $0 }
        #expect(was == "50000", "a new thread starts with Linux's default slack")
        #expect(now == "1", "the pacing thread's slack was not set")
        #expect(Self.ownSlack() == "50000", "another thread's slack changed")
    }
}
