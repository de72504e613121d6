import Foundation
import NIOCore
import NIOPosix
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Issue 14 item 7: the metrics listener shares relayd's file descriptors
/// with the TLS listener, so it must not let idle clients take them all.
@Suite("relayd end to end: the metrics listener is bounded", .serialized)
struct MetricsListenerTests {
    @Test("2,000 idle sockets on the metrics port (relayd at the common 1024 open-file limit): the TLS port still serves HELLO and a publish within 10 s; relayd caps, times out and counts them")
    func idleSocketsLeaveTLSServing() async throws {
        let count = try AbuseTests.connectionBudget(wanted: 2_000)
        try await withRelayd(metrics: true, start: false) { relayd in
            try relayd.replaceInConfig("[metrics]\nlisten = \"127.0.0.1:0\"",
                                       with: "[metrics]\nlisten = \"127.0.0.1:0\"\nmax_connections = 64\nrequest_timeout = \"2s\"")
            relayd.openFileLimit = 1_024
            try await relayd.start()
            let metricsPort = try #require(relayd.metricsPort)

            // Idle: connect and send nothing. Connections the kernel cannot queue time out on our side; they are counted, not fatal.
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(.seconds(2))
            var idle: [any Channel] = []
            var unconnected = 0
            for chunk in stride(from: 0, to: count, by: 100) {
                let connecting = (chunk..<min(chunk + 100, count)).map { _ in bootstrap.connect(host: "127.0.0.1", port: metricsPort) }
                for future in connecting {
                    do { idle.append(try await future.get()) } catch { unconnected += 1 }
                }
            }
            defer { for socket in idle { socket.close(promise: nil) } }
            print("metrics port: \(idle.count) idle sockets connected, \(unconnected) did not connect")

            // The TLS port: a client completes HELLO and a publish within a bound.
            let started = NIODeadline.now()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            let acks = try await client.publish("legit.during", count: 1)
            let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
            #expect(acks.count == 1)
            #expect(seconds < 10, "HELLO and a publish took \(seconds) s")
            await client.close()

            // Every idle socket is closed by relayd: at accept past the cap, or at the request timeout.
            // No event spans 2,000 channels: polled.
            _ = await eventually(timeout: 15, every: 0.1) { !idle.contains(where: { $0.isActive }) }
            let open = idle.filter { $0.isActive }.count
            #expect(open == 0, "\(open) idle metrics connections were never closed by relayd")
            let refused = try await relayd.metric("relay_metrics_connections_refused_total") ?? 0
            let timedOut = try await relayd.metric("relay_metrics_connections_timed_out_total") ?? 0
            // Each idle socket was either refused at the cap or closed at the timeout (which frees a slot for a
            // later one while the 2,000 are still connecting on a slow machine); the scrapes are served, so neither.
            #expect(refused + timedOut == Double(idle.count), "refused \(refused) + timed out \(timedOut) != \(idle.count) idle sockets")
            #expect(timedOut >= 1, "no connection was closed at the request timeout")
            #expect(refused >= 1, "no connection was refused at the cap")
            let pid = try #require(relayd.process?.pid)
            let descriptors = try #require(ProcessMemory.openDescriptors(pid: pid))
            #expect(descriptors < 200, "relayd still holds \(descriptors) descriptors")
        }
    }
}
