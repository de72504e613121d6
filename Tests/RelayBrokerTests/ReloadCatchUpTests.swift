import Foundation
import Logging
import NIOCore
import RelayStore
import RelayTestSupport
import RelayWire
import Testing
@testable import RelayBroker

/// A reload installs the new policy, then queues each session's
/// re-evaluation on that session's event loop. A PUB the loop reads before
/// it runs that task must already be judged by the new rules: in a CI run
/// of the full suite `StagedReloadTests/editWaitsForSighup` saw the audit
/// trail's "reload applied" and then had its next PUB accepted under the
/// old policy. Here the in-process broker installs the narrowed policy
/// without queueing any re-evaluation at all (the task "not yet run"), so
/// only the session's own check at the next read can refuse the PUB.
/// The rules and the PUB helper are `StagedReloadTests`'.
@Suite("A session judges its next read by the policy a reload installed", .serialized)
struct ReloadCatchUpTests {
    @Test("a policy installed but not yet pushed to the session: the next PUB on a topic it denies is refused")
    func nextReadUsesTheInstalledPolicy() async throws {
        try await withRelayd(acl: StagedReloadTests.aAndB, start: false) { fixture in
            let configuration = try BrokerConfiguration.load(path: fixture.configPath)
            let broker = try await Broker.start(configuration: configuration, logger: Logger(label: "reload-catch-up-test"),
                                                createDataDirectory: true,
                                                openLog: { store, _ in InMemoryMessageLog(configuration: store) })
            let client = try await FrameClient.connect(port: broker.port, pki: fixture.pki)
            try await client.hello()
            #expect(try await StagedReloadTests.accepted(client, 1, "b.one"))

            try fixture.writeConfig(acl: StagedReloadTests.aOnly)
            let next = try BrokerConfiguration.load(path: fixture.configPath)
            let sessions = broker.context.install(configuration: next, policy: try next.makePolicy())
            #expect(sessions.count == 1, "the client's session is registered")
            // No catchUpWithReload() queued: what refuses b.two is the read's own check.
            #expect(try await !StagedReloadTests.accepted(client, 2, "b.two"), "the installed policy was not applied to the next PUB")
            #expect(try await StagedReloadTests.accepted(client, 3, "a.three"))
            await client.close()
            await broker.shutdown()
        }
    }
}
