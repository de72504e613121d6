import Foundation
import RelayClient
import RelayTestSupport
import RelayTLS
import Synchronization
import Testing

/// Every verified identity may publish and subscribe everywhere.
let allowAllACL = """
[[acl.rule]]
name = "allow-all"
match = {}
publish = [">"]
subscribe = [">"]
"""

/// Runs `body` with a running relayd and the test PKI; relayd is stopped
/// (and its log reported on failure) when `body` ends: see `withRelayd`.
func withBroker<Result>(acl: String = allowAllACL, crl: String? = nil, pki: TLSTestPKI? = nil,
                        _ body: (RelaydFixture) async throws -> Result) async throws -> Result {
    try await withRelayd(pki: pki, acl: acl, crl: crl, body)
}

extension RelaydFixture {
    /// A library configuration for `client` (alice by default) with fast reconnects.
    func clientConfiguration(_ client: TLSTestPKI.Files? = nil, reconnect: ReconnectPolicy = ReconnectPolicy(
        initialDelay: .milliseconds(20), maximumDelay: .milliseconds(500))) -> RelayClientConfiguration {
        let files = client ?? pki.alice
        var configuration = RelayClientConfiguration(host: "127.0.0.1", port: port, certificatePath: files.certificate,
                                                     privateKeyPath: files.key, caPath: pki.ca.certificate)
        configuration.reconnect = reconnect
        configuration.clientName = "relay-client-tests"
        return configuration
    }

    /// `--server --cert --key --ca` for the CLIs.
    func cliArguments(_ client: TLSTestPKI.Files? = nil, caPath: String? = nil) -> [String] {
        let files = client ?? pki.alice
        return ["--server", "127.0.0.1:\(port)", "--cert", files.certificate, "--key", files.key,
                "--ca", caPath ?? pki.ca.certificate]
    }
}

/// Takes `count` messages from `subscription`, failing after `timeout` seconds.
func take(_ count: Int, from subscription: RelaySubscription, timeout: Double = 30) async throws -> [ReceivedMessage] {
    // How far it got, for the timeout's message: a stall at 0 and one at
    // count - 1 are different defects.
    let received = ReceivedCount()
    return try await withThrowingTaskGroup(of: [ReceivedMessage].self) { group in
        group.addTask {
            var out: [ReceivedMessage] = []
            out.reserveCapacity(count)
            if count == 0 { return out }
            for try await message in subscription {
                out.append(message)
                received.value.withLock { $0 = out.count }
                if out.count == count { break }
            }
            return out
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
            let got = received.value.withLock { $0 }
            throw HarnessError.timeout("fewer than \(count) messages within \(timeout) s (\(got) received)")
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() else { throw HarnessError.timeout("no result") }
        return result
    }
}

/// ``take(_:from:timeout:)``'s count so far, shared with its timer.
private final class ReceivedCount: Sendable {
    let value = Mutex(0)
}

enum HarnessError: Error, CustomStringConvertible {
    case timeout(String)
    /// A subscription finished without an error.
    case finished
    var description: String {
        switch self {
        case .timeout(let m): return m
        case .finished: return "the subscription finished without an error"
        }
    }
}

/// Runs a built CLI to completion and returns (status, stdout lines, stderr lines).
func runCLI(_ name: String, _ arguments: [String], stdin: String? = nil, environment: [String: String]? = nil,
            timeout: Double = 60) async throws -> (status: Int32, stdout: [String], stderr: [String]) {
    let child = try await ChildProcess(try ProductLocator.executable(name), arguments, environment: environment)
    if let stdin { child.writeToStdin(stdin) }
    child.closeStdin()
    guard let status = await child.waitForExit(timeout: timeout) else {
        child.signal(SIGKILL)
        throw HarnessError.timeout("\(name) did not exit within \(timeout) s:\n\(child.transcript)")
    }
    return (status, child.stdoutLines, child.stderrLines)
}

/// How `subscription` ends within `timeout` seconds: the error it finished
/// with, `HarnessError.finished` when it finished without one, or nil when it
/// is still open (messages that arrive meanwhile are dropped).
func end(of subscription: RelaySubscription, timeout: Double) async -> (any Error)? {
    await withTaskGroup(of: (any Error)?.self) { group in
        group.addTask {
            do {
                for try await _ in subscription {}
                return HarnessError.finished
            } catch {
                return error
            }
        }
        group.addTask {
            // The deadline, not a wait standing in for the event: whichever
            // task finishes first answers, and the other is cancelled.
            try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
            return nil
        }
        defer { group.cancelAll() }
        return await group.next() ?? nil
    }
}
