import Dispatch
import NIOCore
import RelayTestSupport
import RelayTLS
import Testing

/// The test clients (RelayTestSupport) on a loaded machine: a full-suite run
/// at load 7-11 on 2 vCPUs resumed test tasks seconds late and had relayd
/// accept connections ~8 s after the connect (docs/testing.md, "Test clients
/// under load"). These pin the two client behaviours that turned that into
/// "I/O on closed channel" failures.
@Suite("test clients under load", .serialized)
struct TestClientsUnderLoadTests {
    @available(macOS 15, *)
    @Test("HTTPProbe: a caller resumed after relayd's request timeout still gets the answer (the request goes out when the connection is up, not when the caller next runs)")
    func probeSurvivesLateResumption() async throws {
        try await withRelayd(metrics: true, start: false) { relayd in
            try relayd.replaceInConfig("[metrics]", with: "[metrics]\nrequest_timeout = \"300ms\"")
            try await relayd.start()
            let port = try #require(relayd.metricsPort)
            // Every resumption of the probing task waits 800 ms: longer than
            // relayd gives a connection to send its request.
            let slow = SlowSchedulingExecutor(delay: .milliseconds(800))
            let answer = try await withTaskExecutorPreference(slow) {
                try await HTTPProbe.get(port: port, path: "/healthz")
            }
            #expect(answer.status == 200 && answer.body == "ok\n", "\(answer)")
            let timedOut = try await relayd.metric("relay_metrics_connections_timed_out_total")
            #expect(timedOut == 0, "relayd closed \(String(describing: timedOut)) probe connection(s) at its request timeout")
        }
    }

    @Test("FrameClient.hello on a connection whose TLS handshake already failed throws the handshake's error, not \"I/O on closed channel\"")
    func helloReportsWhyTheConnectionClosed() async throws {
        let pki = try TLSTestPKI()
        defer { pki.remove() }
        let silent = try await OccupiedPort.bind()  // completes TCP, never answers TLS
        let client = try await FrameClient.connect(port: silent.port, pki: pki, handshakeTimeout: .milliseconds(200))
        try await client.channel.closeFuture.get()  // the handshake timed out and closed the connection
        var thrown: (any Error)?
        do { try await client.hello() } catch { thrown = error }
        await silent.close()
        #expect(thrown as? TLSError == .handshakeTimedOut(milliseconds: 200), "hello threw \(String(describing: thrown))")
    }
}

/// A task executor that runs each job `delay` after it is enqueued: a test
/// task on a machine so loaded that every resumption comes late.
@available(macOS 15, *)
final class SlowSchedulingExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "slow-scheduling-executor")
    private let delay: DispatchTimeInterval

    init(delay: DispatchTimeInterval) { self.delay = delay }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.asyncAfter(deadline: .now() + delay) { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
