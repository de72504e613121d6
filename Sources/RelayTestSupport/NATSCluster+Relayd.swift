import Foundation

extension RelaydFixture {
    /// Points this relayd at `cluster` (`[storage] backend = "jetstream"`,
    /// every node's URL, the cluster's client certificate, R3) and rewrites
    /// its config. The fixture must share the cluster's PKI, so that clients
    /// of the edge and the edge itself are issued by the CA NATS trusts.
    public func useJetStream(cluster: NATSCluster, replicas: Int = 3, publishTimeout: String = "10s",
                             retryBackoff: String = "100ms", extra: String = "") throws {
        let servers = cluster.nodes.map { "\"\($0.url)\"" }.joined(separator: ", ")
        storageExtra = """
        backend = "jetstream"

        [storage.jetstream]
        servers = [\(servers)]
        ca = "\(cluster.pki.ca.certificate)"
        certificate = "\(cluster.clientCertificate.certificate)"
        private_key = "\(cluster.clientCertificate.key)"
        replicas = \(replicas)
        publish_timeout = "\(publishTimeout)"
        retry_backoff = "\(retryBackoff)"
        """
        try writeConfig(extra: extra)
    }
}
