import Foundation
import RelayTLS
import RelayTestSupport
import Testing

/// The 3-node NATS JetStream fixture the cluster tests stand on: it forms
/// with mTLS everywhere, survives losing its meta leader, loses quorum with
/// two nodes down and regains it, and refuses route certificates that cannot
/// dial (no clientAuth EKU).
@Suite("NATSClusterFixture", .serialized)
struct NATSClusterFixtureTests {
    @Test func formsWithMutualTLSOnClientsAndRoutes() async throws {
        try await withNATSCluster { cluster in
            let problem = await cluster.formationProblem()
            #expect(problem == nil)
            let leader = await cluster.metaLeader()
            #expect(leader != nil)
            for index in cluster.nodes.indices {
                let varz = try #require(await cluster.monitor(index, "/varz"))
                #expect(varz["tls_required"] as? Bool == true)
                #expect(varz["tls_verify"] as? Bool == true)
                let routes = varz["cluster"] as? [String: Any]
                #expect(routes?["tls_required"] as? Bool == true)
                #expect(routes?["tls_verify"] as? Bool == true)
            }
        }
    }

    @Test func survivesKillOfTheMetaLeaderAndTakesItBack() async throws {
        try await withNATSCluster { cluster in
            let first = try #require(await cluster.metaLeader())
            await cluster.kill(first)
            try await cluster.waitUntilFormed(timeout: 15)
            let second = try #require(await cluster.metaLeader())
            #expect(second != first)
            #expect(cluster.runningIndices.count == 2)
            try await cluster.restart(first, timeout: 15)
            #expect(cluster.runningIndices.count == 3)
            let problem = await cluster.formationProblem()
            #expect(problem == nil)
        }
    }

    @Test func twoNodesDownMeansNoQuorumUntilOneReturns() async throws {
        try await withNATSCluster { cluster in
            let survivor = 0
            await cluster.kill(1)
            await cluster.kill(2)
            // nats-server's Raft leader steps down only after it has missed a
            // quorum for about 10 s, checked every few seconds (lost-quorum
            // interval); 15 s was seen too short on a loaded machine.
            let lost = await cluster.waitForNoQuorum(timeout: 30)
            #expect(lost)
            let healthy = await cluster.isHealthy(survivor)
            #expect(!healthy)
            let leader = await cluster.metaLeader()
            #expect(leader == nil)
            try await cluster.launch(1)
            try await cluster.waitUntilFormed(timeout: 15)
            let regained = await cluster.isHealthy(survivor)
            #expect(regained)
        }
    }

    @Test func routeCertificateWithoutClientAuthDoesNotForm() async throws {
        var serverOnly = CertificateRequest.natsNode
        serverOnly.extendedKeyUsage = [.serverAuth]
        let cluster = try NATSCluster(nodeRequest: serverOnly)
        let error = await #expect(throws: RelaydFixtureError.self) { try await cluster.start(timeout: 4) }
        #expect(error?.message.contains("routes of 2") == true)
        await cluster.stop()
    }
}
