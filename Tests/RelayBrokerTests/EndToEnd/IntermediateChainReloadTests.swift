import Foundation
import NIOCore
import RelayBroker
import RelayCore
import RelayTLS
import RelayTestSupport
import RelayWire
import Testing

/// Reloads with client certificates issued by intermediate CAs, the normal
/// shape of a production PKI (Relay issue 14, item 1): root → intermediate →
/// leaf and root → int1 → int2 → leaf, against the real relayd.
@Suite("relayd end to end: reload with intermediate-CA chains", .serialized)
struct IntermediateChainReloadTests {
    @Test("20 no-op SIGHUPs keep all 30 sessions whose certificates come from 2- and 3-level chains")
    func noOpReloadsKeepIntermediateSessions() async throws {
        let tree = try IntermediateTree()
        let identities = try tree.clients(15)
        #expect(identities.count == 30)
        try await withRelayd(pki: tree.pki) { relayd in
            var sessions: [FrameClient] = []
            for identity in identities {
                let client = try await FrameClient.connect(port: relayd.port, pki: tree.pki, as: identity)
                let welcome = try await client.hello()
                let name = URL(fileURLWithPath: identity.certificate).deletingPathExtension().lastPathComponent
                #expect(welcome.subject == "CN=\(name)")
                sessions.append(client)
            }

            for round in 1...20 {
                relayd.reload()
                #expect(await relayd.waitForReloads(round), "reload \(round) was not applied:\n\(relayd.process?.transcript ?? "")")
                // Every session answers a PING sent after the reload re-checked
                // it (the re-check was queued on its event loop before the log
                // line we waited for), so a cut session shows up here as ERR or close.
                for (index, client) in sessions.enumerated() {
                    let token = UInt64(round * 100 + index)
                    try await client.send(.ping(token: token))
                    let reply = try await client.nextReply { frame in
                        switch frame {
                        case .pong, .error: return true
                        default: return false
                        }
                    }
                    #expect(reply == .pong(token: token), "session \(index) after reload \(round): \(String(describing: reply))")
                }
            }
            let ended = relayd.auditEvents().filter { $0.event == "session_ended" }
            #expect(ended.isEmpty, "sessions cut by a no-op reload: \(ended.map(\.fields))")
            let reloads = relayd.auditEvents().filter { $0.event == "reload" && $0["result"] == "applied" }
            #expect(reloads.count == 20)
            let allThirty = reloads.allSatisfy { $0["sessions"] == "30" }
            #expect(allThirty)
            for client in sessions { await client.close() }
            try await relayd.verifyAuditChain()
        }
    }
}

extension RelaydFixture {
    /// Waits until relayd has applied `count` reloads and queued every
    /// session's re-check (its "configuration reloaded" log line follows
    /// the queueing). Polls: relayd reports both asynchronously.
    func waitForReloads(_ count: Int, timeout: Double = 30) async -> Bool {
        await eventually(timeout: timeout, every: 0.02) {
            let applied = auditEvents().filter { $0.event == "reload" && $0["result"] == "applied" }.count
            return applied >= count && logLines.filter({ $0.contains("configuration reloaded") }).count >= count
        }
    }

    /// relayd's output so far, both streams (the logger writes to stderr).
    var logLines: [String] { (process?.stdoutLines ?? []) + (process?.stderrLines ?? []) }

    /// Polls relayd's output until a line satisfies `predicate` (it is
    /// written asynchronously); false after `timeout` seconds.
    func waitForLogLine(timeout: Double = 10, _ predicate: (String) -> Bool) async -> Bool {
        await eventually(timeout: timeout, every: 0.02) { logLines.contains(where: predicate) }
    }
}
