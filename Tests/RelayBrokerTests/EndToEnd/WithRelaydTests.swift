import Foundation
import NIOConcurrencyHelpers
import RelayTestSupport
import Testing

/// The `withRelayd` scope itself: relayd is gone when the scope returns,
/// however the body ended, and a failing body gets relayd's log reported.
@Suite("withRelayd scope")
struct WithRelaydTests {
    struct DeliberateError: Error {}

    /// What a scope leaves behind: relayd's pid, port and temporary directory.
    struct Run: Sendable {
        var pid: Int32
        var port: Int
        var directory: String

        init(_ relayd: RelaydFixture) throws {
            pid = try #require(relayd.process?.pid)
            port = relayd.port
            directory = relayd.directory.path
        }

        /// The process no longer exists (reaped, not a zombie), nothing
        /// listens on its port, and its files are removed.
        func expectGone(sourceLocation: SourceLocation = #_sourceLocation) {
            errno = 0
            #expect(kill(pid, 0) == -1 && errno == ESRCH, "relayd pid \(pid) still exists", sourceLocation: sourceLocation)
            #expect(!Self.accepts(port: port), "something still listens on relayd's port \(port)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) was not removed", sourceLocation: sourceLocation)
        }

        /// Whether a TCP connect to 127.0.0.1:port succeeds.
        static func accepts(port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }
    }

    @Test("after a normal exit relayd is gone and the body's value is returned")
    func normalExit() async throws {
        let (run, value) = try await withRelayd { relayd in
            let run = try Run(relayd)
            #expect(kill(run.pid, 0) == 0, "relayd is not running inside the scope")
            #expect(Run.accepts(port: run.port), "relayd does not listen inside the scope")
            return (run, 42)
        }
        #expect(value == 42)
        run.expectGone()
    }

    @Test("after a thrown error relayd is gone, the error is rethrown and relayd's log is reported",
          .compactMapIssues { issue in WithRelaydTests.reports.withLockedValue { $0.append(issue.description) }; return issue })
    func thrownError() async throws {
        let box = NIOLockedValueBox<Run?>(nil)
        await #expect(throws: DeliberateError.self) {
            try await withRelayd { relayd in
                box.withLockedValue { $0 = try? Run(relayd) }
                throw DeliberateError()
            }
        }
        try #require(box.withLockedValue { $0 }).expectGone()
        let reports = Self.reports.withLockedValue { $0 }.filter { $0.contains("the test threw DeliberateError") }
        #expect(reports.count == 1, "no single log report: \(Self.reports.withLockedValue { $0 })")
        #expect(reports.first?.contains("relayd listening on 127.0.0.1:") == true, "the report lacks relayd's output: \(reports)")
    }

    @Test("after a cancellation relayd is gone")
    func cancelled() async throws {
        let box = NIOLockedValueBox<Run?>(nil)
        let task = Task {
            try await withRelayd { relayd in
                box.withLockedValue { $0 = try? Run(relayd) }
                try await Task.sleep(for: .seconds(600))  // not a wait for an event: the body must still be running when the test cancels it
            }
        }
        // The scope's body runs on another task and announces itself only through the box: polled.
        let run = try #require(await eventuallyValue(timeout: 60) { box.withLockedValue { $0 } })
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        run.expectGone()
    }

    @Test("a failing expectation in the body gets relayd's log reported (the failure itself is expected here)",
          .compactMapIssues { issue in
              WithRelaydTests.reports.withLockedValue { $0.append(issue.description) }
              // The deliberate failure is dropped so this test passes; everything else stays.
              return issue.description.contains("deliberate failure") ? nil : issue
          })
    func failedExpectation() async throws {
        try await withRelayd { _ in
            #expect(Bool(false), "deliberate failure")
        }
        let reports = Self.reports.withLockedValue { $0 }
        #expect(reports.contains { $0.contains("deliberate failure") }, "the deliberate failure was not recorded: \(reports)")
        #expect(reports.contains { $0.contains("relayd log (1 expectation(s) failed)") && $0.contains("relayd listening on") },
                "no log report after a failed expectation: \(reports)")
    }

    /// Issues seen by the tests above with a `.compactMapIssues` trait.
    static let reports = NIOLockedValueBox<[String]>([])
}
