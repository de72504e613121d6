import Foundation
import RelayTestSupport
import Testing

/// `make cluster` (scripts/cluster.sh) once stopped working without anyone
/// noticing (it waited for a plain log line relayd no longer prints, then
/// gave up). Its `--check` mode starts the 3 NATS nodes and 2 edges of
/// config/cluster/, runs what it prints (relay-sub through edge B,
/// relay-pub through edge A, relayctl status on both), stops everything and
/// checks that the 5 processes are gone. In ClusterTests, so it runs in the
/// heavy pass and never next to another cluster.
extension ClusterTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test("make cluster: scripts/cluster.sh --check starts 3 NATS nodes and 2 edges, a message published through edge A reaches a subscriber on edge B, relayctl status answers on both, and all 5 processes stop")
    func makeClusterCheck() async throws {
        let root = Self.repository.path
        let products = ProductLocator.productsDirectory.path
        // The configs name the dev PKI (dev/pki, what `make pki` writes); made here when missing.
        if !FileManager.default.fileExists(atPath: root + "/dev/pki/ca.pem") {
            let pki = try await ChildProcess(products + "/relayctl", ["pki", "init", "--dir", root + "/dev/pki"])
            pki.closeStdin()
            let made = await pki.waitForExit(timeout: 30)
            #expect(made == 0, "relayctl pki init: \(pki.transcript)")
        }
        let started = ContinuousClock.now
        let script = try await ChildProcess("/bin/bash", [root + "/scripts/cluster.sh", "--check"],
                                      environment: ["RELAY_BIN_DIR": products])
        script.closeStdin()
        guard let status = await script.waitForExit(timeout: 90) else {
            script.signal(SIGTERM)  // its trap stops what it started
            _ = await script.waitForExit(timeout: 30)
            Issue.record("cluster.sh --check did not finish within 90 s:\n\(script.transcript)")
            return
        }
        let elapsed = ContinuousClock.now - started
        #expect(status == 0, "cluster.sh --check exited \(status):\n\(script.transcript)")
        for line in ["published through edge A, received through edge B", "relayctl status answers on both edges",
                     "all 5 processes stopped", "check passed"] {
            let found = script.stderrLines.contains { $0.contains(line) }
            #expect(found, "no \"\(line)\" line:\n\(script.transcript)")
        }
        print("ClusterTests: cluster.sh --check took \(elapsed)")
    }
}
