import Foundation
import RelayTestSupport
import Testing

/// The fixture restarts relayd on the port it had (clients keep their
/// address). A port from the kernel's ephemeral range can be given to any
/// outgoing connection while relayd is down, and the restart then fails with
/// EADDRINUSE (EarlySignalTests/sigtermAtOnce did, once): the fixture's port
/// must come from outside that range.
@Suite("RelaydFixture: a port no client socket can take")
struct RelaydFixturePortTests {
    /// /proc/sys/net/ipv4/ip_local_port_range, read here (not through the
    /// fixture's code) so the check does not trust what it checks.
    static func ephemeralRange() throws -> ClosedRange<Int> {
        let text = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let low = try #require(bounds.first)
        let high = try #require(bounds.last)
        return low...high
    }

    @Test("relayd listens outside the ephemeral port range, and restarts (after kill -9 and after SIGTERM) on the same port")
    func portOutsideTheEphemeralRange() async throws {
        let ephemeral = try Self.ephemeralRange()
        try await withRelayd { relayd in
            let port = relayd.port
            #expect(!ephemeral.contains(port), "relayd listens on \(port), inside the ephemeral range \(ephemeral)")
            try await relayd.restart()
            #expect(relayd.port == port)
            let status = await relayd.terminate()
            #expect(status == 0)
            try await relayd.start()
            #expect(relayd.port == port)
            let client = try await FrameClient.connect(port: relayd.port, pki: relayd.pki)
            let welcome = try await client.hello()
            #expect(!welcome.principal.isEmpty)
            await client.close()
        }
    }
}
