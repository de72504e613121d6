import Foundation
import NIOCore
import RelayCore
@testable import RelayStore
import RelayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kill -9 of a process that appends with group commit never loses an
/// acknowledged message, never leaves a partial record, never leaves a gap.
@Suite struct CrashTests {
    /// The child executable sits next to the test bundle in the build
    /// products directory (the test target depends on it, so `swift test`
    /// builds it first).
    static func childExecutable() throws -> URL {
        let candidates = [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])]
            .compactMap { $0?.resolvingSymlinksInPath().deletingLastPathComponent() }
            + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for directory in candidates {
            let url = directory.appendingPathComponent("relay-store-crashchild")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw StoreError.invalidArgument("relay-store-crashchild not found next to the tests (\(candidates.map(\.path))); run `swift build` first")
    }

    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            hash ^= UInt64(b)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// Runs the child for `milliseconds` after it is ready, SIGKILLs it, and
    /// returns the acknowledged (sequence, digest) pairs it printed.
    static func runAndKill(_ executable: URL, directory: String, milliseconds: Int) async throws -> [(UInt64, UInt64)] {
        let child = try await ChildProcess(executable.path, [directory])
        // Wait for "ready" so the kill lands while appending, not while opening.
        let ready = await child.waitForLine(timeout: 60) { $0 == "ready" }
        try #require(ready != nil, "the crash child never printed ready:\n\(child.transcript)")
        // Time is what is under test here: the SIGKILL lands a random 20-250 ms
        // into the appends, at whatever point of a commit the writer is.
        try await Task.sleep(nanoseconds: UInt64(milliseconds) * 1_000_000)
        child.signal(SIGKILL)
        let status = await child.waitForExit(timeout: 60)
        try #require(status != nil, "the crash child outlived SIGKILL by 60 s")
        // Only complete lines count: the last one may have been cut by the kill.
        var lines = child.stdoutLines
        if child.stdoutEndedMidLine { lines.removeLast() }
        return lines.compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let seq = UInt64(parts[0]), let digest = UInt64(parts[1], radix: 16) else { return nil }
            return (seq, digest)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func killedWriterLosesNoAcknowledgedMessage() async throws {
        let executable = try Self.childExecutable()
        let dir = try TemporaryDirectory(prefix: "relay-crash")
        defer { dir.remove() }
        var acknowledged: [UInt64: UInt64] = [:]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<24 {
            let acks = try await Self.runAndKill(executable, directory: dir.path,
                                           milliseconds: Int.random(in: 20...250, using: &generator))
            for (seq, digest) in acks { acknowledged[seq] = digest }
            let store = try MessageStore.open(StoreConfiguration(directory: dir.path))
            defer { store.close() }
            // Every record from 1 to the last is present, decodes, and matches what was acknowledged.
            var expected: UInt64 = 1
            var next: UInt64 = 1
            var done = false
            while !done {
                let batch = try store.read(from: next, filter: TopicFilter(">"), maxMessages: 4096, maxBytes: 64 << 20)
                for message in batch.messages {
                    #expect(message.sequence == expected, "gap before \(message.sequence) in round \(round)")
                    expected = message.sequence + 1
                    if let digest = acknowledged[message.sequence] {
                        let actual = message.payload.withUnsafeReadableBytes(Self.fnv1a)
                        #expect(actual == digest, "message \(message.sequence) changed after crash round \(round)")
                    }
                    #expect(message.headers == (try headerBlock([("n", "\(message.payload.readableBytes)")])))
                }
                next = batch.next
                done = batch.reachedEnd
            }
            let last = expected - 1
            let maxAcknowledged = acknowledged.keys.max() ?? 0
            #expect(last >= maxAcknowledged, "acknowledged up to \(maxAcknowledged) but only \(last) survived round \(round)")
            #expect(try store.lastSequence() == last)
            // The topic index agrees with the log.
            let a = try store.read(topic: Topic("crash.a"), from: 1, maxMessages: 1 << 30, maxBytes: 1 << 40).messages.count
            let b = try store.read(topic: Topic("crash.b.c"), from: 1, maxMessages: 1 << 30, maxBytes: 1 << 40).messages.count
            #expect(UInt64(a + b) == last)
        }
        #expect(acknowledged.count > 100, "the child acknowledged too little to prove anything")
    }
}
