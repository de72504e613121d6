import Foundation
import RelayTestSupport
import Testing

/// Issue 18 item 5: relayd's output is a log an operator can tail and a
/// collector can parse: every line (stdout and stderr, the start-up summary,
/// "listening" and "stopped" included) in the configured format, UTC
/// timestamps with a zone, one line per connection accepted, closed and
/// denied with the principal and the peer as `127.0.0.1:58372`.
@Suite("relayd end to end: operator logs", .serialized)
struct OperatorLogTests {
    /// `2026-12-03T12:00:00.123Z`
    static var timestamp: Regex<Substring> { #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/# }
    static var peer: Regex<Substring> { #/^127\.0\.0\.1:\d{1,5}$/# }

    @Test("json: every line is a JSON object with a UTC ts; start-up summary, listening, connection accepted/closed/denied and stopped are there with their fields")
    func jsonLines() async throws {
        let lines = try await Self.run(format: "json", parse: RelaydLogLine.json)
        try Self.expectLifecycleAndConnections(lines)
    }

    @Test("logfmt: every line is logfmt with a UTC ts, with the same events")
    func logfmtLines() async throws {
        let lines = try await Self.run(format: "logfmt", parse: RelaydLogLine.logfmt)
        try Self.expectLifecycleAndConnections(lines)
    }

    @Test("[log] connections = false: no per-connection lines, the rest unchanged")
    func connectionLinesOff() async throws {
        let lines = try await Self.run(format: "logfmt", connections: false, parse: RelaydLogLine.logfmt)
        let connectionLines = lines.filter { ($0["msg"] ?? "").hasPrefix("connection ") }
        #expect(connectionLines.isEmpty, "\(connectionLines)")
        #expect(lines.contains { $0["msg"]?.hasPrefix("relayd listening on ") == true })
    }

    @Test("a verified certificate the policy refuses: one connection denied line with reason identity_refused, the subject and the peer")
    func identityRefusedIsDenied() async throws {
        try await withRelayd(acl: """
        [[acl.rule]]
        name = "bob-only"
        match = { "subject.CN" = "bob" }
        publish = [">"]
        """) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            _ = await client.helloOutcome()
            await client.close()
            let denied = await eventuallyValue(timeout: 10, every: 0.02) { () -> [String: String]? in
                (relayd.process?.stderrLines ?? []).compactMap(RelaydLogLine.logfmt).first { $0["msg"] == "connection denied" }
            }
            let line = try #require(denied, "no connection denied line:\n\(relayd.log)")
            #expect(line["reason"] == "identity_refused", "\(line)")
            #expect(line["subject"]?.contains("CN=alice") == true, "\(line)")
            #expect(line["peer"]?.wholeMatch(of: Self.peer) != nil, "\(line)")
        }
    }

    @Test("a start that fails after the config loaded (the port is taken) says so in one logfmt line at critical, exit 1, nothing raw")
    func startFailureIsALogLine() async throws {
        try await withRelayd { running in
            try await withRelayd(start: false) { second in
                let child = try await ChildProcess(try ProductLocator.executable("relayd"),
                                             ["--init", "--config", second.configPath, "--listen", "127.0.0.1:\(running.port)"])
                let status = await child.waitForExit(timeout: 30)
                #expect(status == 1, "exit \(String(describing: status)):\n\(child.transcript)")
                let lines = child.outputLines
                let unparsed = lines.filter { RelaydLogLine.logfmt($0) == nil }
                #expect(unparsed.isEmpty, "lines not in logfmt: \(unparsed)")
                let failure = lines.compactMap(RelaydLogLine.logfmt).first { $0["msg"] == "relayd cannot start" }
                #expect(failure?["level"] == "critical", "\(lines)")
                #expect(failure?["error"]?.contains("cannot listen on 127.0.0.1:\(running.port)") == true, "\(lines)")
            }
        }
    }

    /// Starts relayd with `[log] format`, opens and closes one session,
    /// gets one handshake refused, stops relayd with SIGTERM, and returns
    /// every output line parsed by `parse` (a line that does not parse is
    /// recorded as a failure).
    static func run(format: String, connections: Bool? = nil,
                    parse: @escaping (String) -> [String: String]?) async throws -> [[String: String]] {
        try await withRelayd(metrics: true, start: false) { relayd in
            let extra = connections.map { "\nconnections = \($0)" } ?? ""
            try relayd.replaceInConfig("[log]\nlevel = \"info\"", with: "[log]\nlevel = \"info\"\nformat = \"\(format)\"\(extra)")
            try await relayd.start()
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            await client.close()
            let stranger = try TLSTestPKI()
            defer { stranger.remove() }
            let refused = try await FrameClient.connect(port: relayd.port, pki: relayd.pki, as: stranger.alice)
            _ = await refused.helloOutcome()
            await refused.close()
            // The close and the refusal are logged asynchronously: wait for the
            // session's end in the audit trail, which is written after the log line.
            _ = await relayd.waitForAudit { $0.event == "session_closed" }
            _ = await relayd.waitForAudit { $0.event == "connection_refused" }
            let status = await relayd.terminate()
            #expect(status == 0, "relayd exited \(String(describing: status)) on SIGTERM")
            let raw = relayd.process?.outputLines ?? []
            #expect(raw.count >= 4, "relayd said almost nothing:\n\(raw.joined(separator: "\n"))")
            var parsed: [[String: String]] = []
            for line in raw {
                guard let fields = parse(line) else {
                    Issue.record("not a \(format) line: \(line)")
                    continue
                }
                let ts = fields["ts"] ?? "(none)"
                #expect(ts.wholeMatch(of: timestamp) != nil, "timestamp \(ts) is not UTC with milliseconds and Z: \(line)")
                #expect(fields["level"] != nil && fields["msg"] != nil, "no level or msg: \(line)")
                parsed.append(fields)
            }
            return parsed
        }
    }

    static func expectLifecycleAndConnections(_ lines: [[String: String]]) throws {
        func line(_ message: String) -> [String: String]? { lines.first { $0["msg"]?.hasPrefix(message) == true } }
        let summary = try #require(line("relayd started"), "no start-up summary line")
        for key in ["version", "config", "data_dir", "store_bytes", "store_max_bytes", "listen", "metrics"] {
            #expect(summary[key].map { !$0.isEmpty } == true, "the start-up summary lacks \(key): \(summary)")
        }
        #expect(line("relayd listening on 127.0.0.1:") != nil, "no listening line")
        #expect(line("relayd metrics on http://127.0.0.1:") != nil, "no metrics line")
        #expect(line("relayd stopped") != nil, "no stopped line")

        let accepted = try #require(line("connection accepted"), "no connection accepted line")
        #expect(accepted["principal"]?.contains("CN=alice") == true, "\(accepted)")
        #expect(accepted["peer"]?.wholeMatch(of: peer) != nil, "peer not as 127.0.0.1:PORT: \(accepted)")
        let closed = try #require(line("connection closed"), "no connection closed line")
        #expect(closed["principal"]?.contains("CN=alice") == true, "\(closed)")
        #expect(closed["reason"] == "peer_closed", "\(closed)")
        #expect(closed["duration_ms"].flatMap(Int.init) != nil, "no duration_ms: \(closed)")
        #expect(closed["peer"]?.wholeMatch(of: peer) != nil, "\(closed)")
        let denied = try #require(line("connection denied"), "no connection denied line")
        #expect(denied["reason"] == "unknown_ca", "\(denied)")
        #expect(denied["peer"]?.wholeMatch(of: peer) != nil, "\(denied)")
        let nioPeers = lines.filter { $0.values.contains { $0.contains("[IPv4]") || $0.contains("[IPv6]") } }
        #expect(nioPeers.isEmpty, "NIO's address form is still printed: \(nioPeers)")
    }
}
