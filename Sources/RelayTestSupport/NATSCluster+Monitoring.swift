import Foundation
import RelayTLS
import Testing

// Cluster state read from each node's monitoring endpoint (plain HTTP on
// 127.0.0.1). Route formation and Raft elections announce themselves only as
// log lines of whichever node won, so the waits below poll /healthz, /routez
// and /jsz with a deadline. A node's /jsz keeps naming a dead meta or stream
// leader until the survivors elect another, so a leader counts only when
// that node itself is running and reports itself as the leader.
extension NATSCluster {
    /// Whether node `index` answers /healthz with status ok: its JetStream is
    /// current with a meta leader (503 "JetStream is not current with the
    /// meta leader" without quorum).
    public func isHealthy(_ index: Int) async -> Bool {
        guard isRunning(index) else { return false }
        return (try? await HTTPGet.fetch(host: "127.0.0.1", port: nodes[index].monitorPort, path: "/healthz")) != nil
    }

    /// Node `index`'s monitoring document at `path` (e.g. "/jsz"), or nil
    /// when it is down or answers anything but 200 with a JSON object.
    public func monitor(_ index: Int, _ path: String) async -> [String: Any]? {
        guard isRunning(index),
              let body = try? await HTTPGet.fetch(host: "127.0.0.1", port: nodes[index].monitorPort, path: path),
              let object = try? JSONSerialization.jsonObject(with: Data(Self.dechunked(body).utf8)) as? [String: Any]
        else { return nil }
        return object
    }

    /// The body as sent: nats-server (Go's net/http) answers documents over
    /// 2 KiB (/varz of a cluster node) with `Transfer-Encoding: chunked`, which HTTPGet passes through as is.
    /// A body that does not start with a chunk-size line is returned unchanged.
    static func dechunked(_ body: String) -> String {
        // range(of:), not firstIndex(of: "\r"): "\r\n" is one Character in Swift.
        guard let first = body.range(of: "\r\n"), Int(body[..<first.lowerBound], radix: 16) != nil else { return body }
        var rest = Substring(body)
        var out = ""
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let utf8 = rest.utf8
            guard let end = utf8.index(start, offsetBy: size, limitedBy: utf8.endIndex) else { break }
            out += String(rest[start..<end])
            rest = rest[end...].dropFirst(2)  // the CRLF after the chunk
        }
        return out
    }

    /// The index of the JetStream meta leader: a running node whose own /jsz
    /// names itself. Nil while there is none (election, no quorum).
    public func metaLeader() async -> Int? {
        for index in runningIndices {
            let jsz = await monitor(index, "/jsz")
            let meta = jsz?["meta_cluster"] as? [String: Any]
            if meta?["leader"] as? String == nodes[index].name { return index }
        }
        return nil
    }

    /// The index of the leader of `stream`: a running node whose own /jsz
    /// names itself leader of that stream. Nil when there is none now.
    public func streamLeader(_ stream: String) async -> Int? {
        for index in runningIndices {
            guard let jsz = await monitor(index, "/jsz?accounts=true&streams=true"),
                  let accounts = jsz["account_details"] as? [[String: Any]] else { continue }
            for account in accounts {
                for detail in account["stream_detail"] as? [[String: Any]] ?? [] where detail["name"] as? String == stream {
                    let cluster = detail["cluster"] as? [String: Any]
                    if cluster?["leader"] as? String == nodes[index].name { return index }
                }
            }
        }
        return nil
    }

    /// Waits (polling, see above) until `stream` has a running leader; its index.
    public func waitForStreamLeader(_ stream: String, timeout: Double = 20) async throws -> Int {
        guard let leader = await eventuallyValue(timeout: timeout, every: 0.05, { await streamLeader(stream) }) else {
            throw RelaydFixtureError(message: "stream \(stream) has no leader after \(timeout) s\n\(log)")
        }
        return leader
    }

    /// Why the running nodes do not (yet) form a full cluster, or nil when
    /// they do: each is healthy, has a route to every other running node, and
    /// a running node is the meta leader.
    public func formationProblem() async -> String? {
        let running = runningIndices
        guard !running.isEmpty else { return "no node is running" }
        // Routes first: without them no node can become healthy, and the
        // missing routes are the more useful message.
        for index in running {
            let routes = await monitor(index, "/routez")?["num_routes"] as? Int
            guard routes == running.count - 1 else {
                return "\(nodes[index].name): \(routes.map(String.init) ?? "no") routes of \(running.count - 1)"
            }
        }
        for index in running where await !isHealthy(index) {
            return "\(nodes[index].name): /healthz is not ok"
        }
        return await metaLeader() == nil ? "no running node is the JetStream meta leader" : nil
    }

    /// Waits (polling, see above) until the running nodes form the cluster.
    public func waitUntilFormed(timeout: Double = 30) async throws {
        var problem: String? = "not checked"
        let formed = await eventually(timeout: timeout, every: 0.05) {
            problem = await formationProblem()
            return problem == nil
        }
        guard formed else {
            throw RelaydFixtureError(message: "the NATS cluster did not form in \(timeout) s: \(problem ?? "")\n\(log)")
        }
    }

    /// Waits (polling, see above) until no running node is healthy: what the
    /// survivors report once they notice they lost quorum. Whether it came.
    public func waitForNoQuorum(timeout: Double = 20) async -> Bool {
        await eventually(timeout: timeout, every: 0.05) {
            for index in runningIndices where await isHealthy(index) { return false }
            return true
        }
    }
}

/// Runs `body` with a started `NATSCluster` and tears it down (every node
/// killed, stores and PKI removed) however `body` ends. When `body` throws or
/// an expectation fails, every node's log is reported as a warning issue.
public func withNATSCluster<Result>(
    pki: TLSTestPKI? = nil, size: Int = 3, nodeRequest: CertificateRequest = .natsNode,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (NATSCluster) async throws -> Result
) async throws -> Result {
    let cluster = try NATSCluster(pki: pki, size: size, nodeRequest: nodeRequest)
    let failures = FailureCount()
    let outcome: Swift.Result<Result, any Error>
    do {
        try await cluster.start()
        outcome = .success(try await countingFailures(in: failures, isolation: isolation) { try await body(cluster) })
    } catch {
        outcome = .failure(error)
    }
    let log = cluster.log
    // In a task of its own so a cancelled test still waits for every kill.
    await Task { await cluster.stop() }.value
    switch outcome {
    case .success(let value):
        if failures.value > 0 { reportClusterLog(log, because: "\(failures.value) expectation(s) failed") }
        return value
    case .failure(let error):
        reportClusterLog(log, because: "the test threw \(error)")
        throw error
    }
}

private func reportClusterLog(_ log: String, because reason: String) {
    let text = "nats-server logs (\(reason)):\n\(log)"
    if Test.current != nil {
        Issue.record(Comment(rawValue: text), severity: .warning)
    } else {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
