import Foundation
import NIOConcurrencyHelpers
import Testing

/// Runs `body` with a real relayd (see `RelaydFixture`) and stops it before
/// returning, whichever way `body` ends: normally, by a thrown error, or by
/// cancellation. When `body` throws or records a failing expectation, relayd's
/// log (every run's stdout and stderr) is reported as a warning issue of the
/// current test, so a failing CI run shows what relayd said.
///
/// The parameters are `RelaydFixture.init`'s. `start: false` hands over a
/// fixture that is not running yet, for tests that change its config first,
/// start it several times, or expect the start to fail; the scope still stops
/// whatever run is current at the end. `restart()`, `kill()` and `start()`
/// inside the body are fine. Two relayds: nest two scopes.
public func withRelayd<Result>(
    pki: TLSTestPKI? = nil, acl: String = RelaydFixture.allowAll, extra: String = "",
    crl: String? = nil, durability: String = "fsync", metrics: Bool = false, start: Bool = true,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RelaydFixture) async throws -> Result
) async throws -> Result {
    let relayd = try RelaydFixture(pki: pki, acl: acl, extra: extra, crl: crl, durability: durability, metrics: metrics)
    return try await withRelayd(relayd, start: start, body)
}

/// The same scope around a fixture built by the caller (e.g. by a suite's
/// helper that adds identities to the PKI first). The scope owns it: it is
/// stopped and its files removed at the end.
public func withRelayd<Result>(
    _ relayd: RelaydFixture, start: Bool = true,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RelaydFixture) async throws -> Result
) async throws -> Result {
    let failures = FailureCount()
    let outcome: Swift.Result<Result, any Error>
    do {
        if start { try await relayd.start() }
        outcome = .success(try await countingFailures(in: failures, isolation: isolation) { try await body(relayd) })
    } catch {
        outcome = .failure(error)
    }
    // In a task of its own so a cancelled test's cancellation does not cut
    // the wait for relayd's exit short; awaited, so relayd is gone (and its
    // output fully read) when the scope returns.
    await Task { await relayd.stop() }.value
    switch outcome {
    case .success(let value):
        if failures.value > 0 {
            reportLog(of: relayd, because: "\(failures.value) expectation(s) failed")
        }
        return value
    case .failure(let error):
        reportLog(of: relayd, because: error is CancellationError ? "the test was cancelled" : "the test threw \(error)")
        throw error
    }
}

/// Failing issues recorded inside one scope (expectations, `Issue.record`).
final class FailureCount: Sendable {
    private let count = NIOLockedValueBox(0)
    var value: Int { count.withLockedValue { $0 } }
    func add() { count.withLockedValue { $0 += 1 } }
}

/// Runs `body`, counting the failing issues it records, through swift-testing's
/// issue-handling trait (which passes every issue on unchanged). Outside a test
/// or on an actor (the trait runs its closure nonisolated) `body` runs plainly.
func countingFailures<Result>(
    in failures: FailureCount, isolation: isolated (any Actor)?,
    _ body: () async throws -> Result
) async throws -> Result {
    guard isolation == nil, let test = Test.current else { return try await body() }
    let trait = IssueHandlingTrait.compactMapIssues { issue in
        if issue.isFailure { failures.add() }
        return issue
    }
    return try await withoutActuallyEscaping(body) { body in
        _ = isolation  // captured: this closure runs in the caller's isolation
        // Unchecked: the trait calls the closure once, on this task, before
        // provideScope returns, and only when the caller is not on an actor
        // (checked above), so `body` and `result` are never shared.
        let call = unsafeBitCast(body, to: (@Sendable () async throws -> Result).self)
        nonisolated(unsafe) var result: Result?
        try await trait.provideScope(for: test, testCase: Test.Case.current) {
            result = try await call()
        }
        guard let value = result else {
            throw RelaydFixtureError(message: "the issue-handling scope returned without running the test body")
        }
        return value
    }
}

/// A warning issue (it does not fail the test by itself) carrying relayd's log.
private func reportLog(of relayd: RelaydFixture, because reason: String) {
    let text = "relayd log (\(reason)):\n\(relayd.log)"
    if Test.current != nil {
        Issue.record(Comment(rawValue: text), severity: .warning)
    } else {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
