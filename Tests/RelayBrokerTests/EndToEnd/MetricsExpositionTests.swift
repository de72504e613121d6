import Foundation
import RelayCore
import RelayTestSupport
import RelayWire
import Testing

/// Issue 18 item 4: what a real relayd's /metrics says is valid Prometheus
/// text with HELP for every family (`promtool check metrics`, from Debian's
/// `prometheus` package: the Makefile installs it; missing is a failure,
/// never a skip), and it carries build info and process metrics.
@Suite("relayd end to end: /metrics exposition", .serialized)
struct MetricsExpositionTests {
    @Test("promtool check metrics passes on /metrics after traffic, a policy denial and a refused handshake; every family has HELP and TYPE")
    func promtoolPasses() async throws {
        try await withRelayd(acl: """
        [[acl.rule]]
        name = "orders"
        publish = ["orders.>"]
        subscribe = ["orders.>"]
        """, metrics: true) { relayd in
            // Traffic so the labelled families have samples: a delivery, a
            // refusal, a refused handshake, a closed session.
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            #expect(try await client.subscribe(1, "orders.>", from: .latest).isAccepted)
            _ = try await client.publish("orders.a", count: 3)
            _ = try await client.messages(3)
            guard case .publishError = try await client.publishReply(100, "secret.a") else {
                throw BrokerTestError.refused("a publish outside the policy was not refused")
            }
            let stranger = try TLSTestPKI()
            defer { stranger.remove() }
            let refused = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: stranger.alice)
            _ = await refused.helloOutcome()
            await refused.close()
            await client.close()
            let counted = await eventually(timeout: 10, every: 0.05) {
                let text = (try? await relayd.scrapeMetrics()) ?? ""
                return text.contains("relay_handshake_failures_total{") && text.contains("relay_sessions_closed_total{")
            }
            #expect(counted, "the refused handshake or the closed session is not in /metrics")

            let text = try await relayd.scrapeMetrics()
            let check = try await Promtool.checkMetrics(text)
            #expect(check.status == 0 && check.output.isEmpty,
                    "promtool check metrics (exit \(String(describing: check.status))):\n\(check.output)\n--- /metrics:\n\(text)")

            let lines = text.split(separator: "\n")
            let typed = Set(lines.filter { $0.hasPrefix("# TYPE ") }.compactMap { $0.split(separator: " ").dropFirst(2).first })
            let helped = Set(lines.filter { $0.hasPrefix("# HELP ") }.compactMap { $0.split(separator: " ").dropFirst(2).first })
            #expect(typed.count >= 20, "only \(typed.count) families: \(typed.sorted())")
            #expect(typed.subtracting(helped).isEmpty, "families without HELP: \(typed.subtracting(helped).sorted())")
        }
    }

    @Test("every connection-level code has its relay_refusals_total series at 0 from the start, before any session was refused")
    func refusalsExistAtZero() async throws {
        try await withRelayd(metrics: true) { relayd in
            let codes = RelayErrorCode.allCases.filter(\.closesConnection)
            #expect(codes.count >= 15, "only \(codes.count) connection-level codes")
            for code in codes {
                // An alert on `increase(relay_refusals_total{code="certificate_revoked"}[5m])`
                // needs the series before the first revocation (it was missing until then).
                let atStart = try await relayd.metric("relay_refusals_total{code=\"\(code.name)\"}")
                #expect(atStart == 0, "relay_refusals_total{code=\"\(code.name)\"} at start: \(String(describing: atStart))")
            }
            let text = try await relayd.scrapeMetrics()
            let operationCodes = RelayErrorCode.allCases.filter { !$0.closesConnection }.map(\.name)
            let misfiled = operationCodes.filter { text.contains("relay_refusals_total{code=\"\($0)\"}") }
            #expect(misfiled.isEmpty, "per-operation codes exported as connection refusals: \(misfiled)")
        }
    }

    @Test("relay_build_info names the version; process metrics (CPU seconds, RSS, open fds, start time) are there and plausible")
    func buildInfoAndProcessMetrics() async throws {
        try await withRelayd(metrics: true) { relayd in
            let text = try await relayd.scrapeMetrics()
            let info = text.split(separator: "\n").first { $0.hasPrefix("relay_build_info{version=\"") && $0.hasSuffix("} 1") }
            #expect(info != nil, "no relay_build_info{version=…} 1 line:\n\(text)")
            let cpu = try #require(try await relayd.metric("process_cpu_seconds_total"), "no process_cpu_seconds_total")
            #expect(cpu > 0 && cpu < 600)
            let rss = try #require(try await relayd.metric("process_resident_memory_bytes"), "no process_resident_memory_bytes")
            #expect(rss > Double(1 << 20) && rss < Double(4 << 30), "RSS \(rss)")
            let fds = try #require(try await relayd.metric("process_open_fds"), "no process_open_fds")
            #expect(fds >= 5 && fds < 10_000, "open fds \(fds)")
            let maxFDs = try #require(try await relayd.metric("process_max_fds"), "no process_max_fds")
            #expect(maxFDs >= fds)
            let start = try #require(try await relayd.metric("process_start_time_seconds"), "no process_start_time_seconds")
            let age = Date().timeIntervalSince1970 - start
            #expect(age > -2 && age < 300, "relayd started \(age) s ago by process_start_time_seconds")
        }
    }
}

/// `promtool check metrics` on an exposition text.
enum Promtool {
    static func checkMetrics(_ exposition: String) async throws -> (status: Int32?, output: String) {
        let candidates = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        guard let path = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw BrokerTestError.refused("promtool is not installed (Debian package `prometheus`; `make deps` installs it): this check cannot be skipped")
        }
        let child = try await ChildProcess(path, ["check", "metrics"])
        child.writeToStdin(exposition)
        child.closeStdin()
        let status = await child.waitForExit(timeout: 30)
        return (status, child.outputLines.joined(separator: "\n"))
    }
}
