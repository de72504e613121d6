import Foundation
import RelayTLS

/// What an edge presents to NATS (`[storage.jetstream]` `ca`, `certificate`,
/// `private_key`), as read at start. nats.c loads these files once, when
/// relayd connects, and presents the same certificate at every reconnect
/// after: a reload cannot swap them, only a restart can. So the broker keeps
/// what it started with, to warn before the certificate lapses (after it,
/// NATS refuses the edge's next connection: ``TLSValidityGauges``) and to
/// say at a reload that renewed files wait for a restart (docs/cluster.md,
/// "Renewing the edge's NATS certificate").
struct NATSClientFiles: Sendable {
    /// Each file's path and its contents at start (nil: unreadable then;
    /// connecting to NATS reports why).
    let loaded: [(path: String, contents: Data?)]
    /// The certificate file's path.
    let certificate: String
    /// The earliest notAfter of the certificate file's chain (nil when it
    /// cannot be read).
    let expiry: ChainExpiry?

    /// nil unless `configuration` uses the jetstream backend. Read before the
    /// log opens, so a file renewed meanwhile counts as changed (a restart
    /// then is one too many, never one too few).
    init?(_ configuration: BrokerConfiguration) {
        guard configuration.storage.backend == .jetstream, let nats = configuration.storage.jetstream else { return nil }
        loaded = [nats.ca, nats.certificate, nats.privateKey].map { ($0, FileManager.default.contents(atPath: $0)) }
        certificate = nats.certificate
        expiry = loaded[1].contents
            .flatMap { String(data: $0, encoding: .utf8) }
            .flatMap { PeerCertificateChain(pem: $0).earliestExpiry }
    }

    /// The files whose contents differ from what was read at start, in config order.
    func changedOnDisk() -> [String] {
        loaded.filter { FileManager.default.contents(atPath: $0.path) != $0.contents }.map(\.path)
    }
}
