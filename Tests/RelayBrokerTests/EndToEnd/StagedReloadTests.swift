import Foundation
import RelayTestSupport
import RelayWire
import Testing

/// Issue 18 item 6 against the real relayd: an edit goes live on SIGHUP (or
/// `relayctl reload`), not when the file is saved; a config that does not
/// validate completely changes nothing; with `[reload] watch = true` one
/// edit gives one reload.
@Suite("relayd end to end: staged reload", .serialized)
struct StagedReloadTests {
    static let aAndB = """
    [[acl.rule]]
    name = "a-and-b"
    publish = ["a.>", "b.>"]
    subscribe = [">"]
    """
    /// Opts in to file watching.
    static let watchOn = "[reload]\nwatch = true"
    static let aOnly = """
    [[acl.rule]]
    name = "a-only"
    publish = ["a.>"]
    subscribe = [">"]
    """

    /// Whether relayd acknowledged the PUB (false: PUBERR or no answer).
    static func accepted(_ client: FrameClient, _ id: UInt64, _ topic: String) async throws -> Bool {
        guard case .publishAck = try await client.publishReply(id, topic) else { return false }
        return true
    }

    /// relayd's log lines about a reload, applied or refused.
    static func reloadLines(_ relayd: RelaydFixture) -> [String] {
        (relayd.process?.stderrLines ?? []).filter { $0.contains("configuration reloaded") || $0.contains("reload refused") }
    }

    @Test("a saved but not yet signalled ACL edit does not go live; SIGHUP applies it")
    func editWaitsForSighup() async throws {
        try await withRelayd(acl: Self.aAndB) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            #expect(try await Self.accepted(client, 1, "b.one"))
            try relayd.writeConfig(acl: Self.aOnly)
            // What is tested is that nothing happens: no event to wait for.
            // 3.5 s covers the old watcher's 2 s poll and today's 1 s poll plus 1 s settle.
            try await Task.sleep(nanoseconds: 3_500_000_000)
            let reloads = relayd.auditEvents().filter { $0.event == "reload" }
            #expect(reloads.isEmpty, "the edit went live without SIGHUP: \(reloads.map(\.fields))")
            #expect(try await Self.accepted(client, 2, "b.two"), "the saved edit already narrowed the policy")

            relayd.reload()
            let applied = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "applied" }
            #expect(applied?["trigger"] == "sighup")
            #expect(try await !Self.accepted(client, 3, "b.three"), "SIGHUP did not apply the narrowed policy")
            #expect(try await Self.accepted(client, 4, "a.four"))
            await client.close()
        }
    }

    @Test("SIGHUP with a config that parses but does not load (key not matching the certificate) keeps the old policy and logs why")
    func invalidConfigKeepsOldPolicy() async throws {
        try await withRelayd(acl: Self.aAndB) { relayd in
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await client.hello()
            // The narrowed ACL and a private key of another certificate: parsing
            // accepts both, only loading the TLS material refuses the key.
            try relayd.writeConfig(acl: Self.aOnly)
            let narrowed = try String(contentsOfFile: relayd.configPath, encoding: .utf8)
            let broken = narrowed.replacingOccurrences(of: "private_key = \"\(relayd.pki.server.key)\"",
                                                       with: "private_key = \"\(relayd.pki.alice.key)\"")
            #expect(broken != narrowed)
            try broken.write(toFile: relayd.configPath, atomically: true, encoding: .utf8)
            relayd.reload()
            let refused = await relayd.waitForAudit { $0.event == "reload" && $0["result"] == "refused" }
            #expect(refused?["trigger"] == "sighup")
            // The audit line comes first; the log line is a later write to relayd's pipe.
            let lines = await eventuallyValue(timeout: 20) { Self.reloadLines(relayd).isEmpty ? nil : Self.reloadLines(relayd) } ?? []
            #expect(lines.count == 1 && lines[0].contains("reload refused") && lines[0].contains("previous configuration stays"),
                    "\(lines)")
            #expect(try await Self.accepted(client, 1, "b.still"), "the refused config's policy went live")
            let fresh = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            try await fresh.hello()
            #expect(try await Self.accepted(fresh, 1, "b.fresh"))
            await fresh.close()
            await client.close()
        }
    }

    /// Polls relayd's log until it has `count` reload lines (a log line is
    /// the event), then waits a poll and a settle interval more, in which no
    /// further line may appear (the absence is what is tested).
    static func waitForReloadLines(_ relayd: RelaydFixture, _ count: Int) async throws -> [String] {
        let deadline = Date().addingTimeInterval(15)
        while reloadLines(relayd).count < count && Date() < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        try await Task.sleep(nanoseconds: 3_000_000_000)
        return reloadLines(relayd)
    }

    @Test("with [reload] watch = true, an in-place rewrite written over 2.5 s and a rename each give exactly one reload")
    func oneEditOneReload() async throws {
        try await withRelayd(extra: Self.watchOn) { relayd in
            let original = try String(contentsOfFile: relayd.configPath, encoding: .utf8)
            // 1. In place, the way `cat > relay.toml` or an editor with
            // backupcopy=yes writes: truncated, then line by line.
            let edited = original.replacingOccurrences(of: "allow-all", with: "allow-all-edited")
            #expect(edited != original)
            let handle = try #require(FileHandle(forWritingAtPath: relayd.configPath))
            try handle.truncate(atOffset: 0)
            let lines = edited.split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated() {
                try handle.write(contentsOf: Data((line + (index == lines.count - 1 ? "" : "\n")).utf8))
                // Spread over 2.5 s, longer than a poll, shorter than the settle interval per gap.
                try await Task.sleep(nanoseconds: 2_500_000_000 / UInt64(lines.count))
            }
            try handle.close()
            let first = try await Self.waitForReloadLines(relayd, 1)
            #expect(first.count == 1 && first.first?.contains("configuration reloaded") == true, "\(first)")

            // 2. Rewrite by rename (what writeConfig and most editors do).
            try relayd.writeConfig(acl: RelaydFixture.allowAll.replacingOccurrences(of: "allow-all", with: "allow-all-renamed"),
                                   extra: Self.watchOn)
            let second = try await Self.waitForReloadLines(relayd, 2)
            #expect(second.count == 2 && second.last?.contains("configuration reloaded") == true, "\(second)")
            let audited = relayd.auditEvents().filter { $0.event == "reload" }
            let allApplied = audited.allSatisfy { $0["trigger"] == "file_change" && $0["result"] == "applied" }
            #expect(audited.count == 2 && allApplied, "\(audited.map(\.fields))")
        }
    }
}
