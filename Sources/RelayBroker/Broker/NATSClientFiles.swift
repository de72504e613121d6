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
    /// connecting to NATS reports why), in the order ca, certificate, private_key.
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

    /// Refuses NATS files that cannot work (`--check-config`, the start): a
    /// certificate, key and CA that do not load together, or a certificate
    /// past its notAfter, which NATS refuses. Without this the check said
    /// "valid" and the start failed in nats.c. Nothing for the lmdb backend.
    static func check(_ configuration: BrokerConfiguration, now: Date = Date()) throws(NATSClientFilesError) {
        try NATSClientFiles(configuration)?.check(now: now)
    }

    /// ``check(_:now:)`` on the files as read at start (the expiry is not read again).
    func check(now: Date = Date()) throws(NATSClientFilesError) {
        let (ca, key) = (loaded[0].path, loaded[2].path)
        do {
            // serverName: any non-empty name; nothing connects.
            _ = try TLSClientContext(configuration: TLSClientConfiguration(
                certificateChain: .file(certificate), privateKey: .file(key), trustRoots: [.file(ca)], serverName: "nats"))
        } catch {
            throw NATSClientFilesError(description: "storage.jetstream: the files relayd presents to NATS do not load: \(error)")
        }
        if let expiry, expiry.notAfter <= now {
            throw NATSClientFilesError(description: "storage.jetstream.certificate: \(certificate) has expired "
                + "(\(expiry.subject), notAfter \(AdminJSON.timestamp(expiry.notAfter))): NATS refuses it; "
                + "issue a new certificate for relayd's NATS connection")
        }
    }

    /// The files whose contents differ from what was read at start, in config order.
    func changedOnDisk() -> [String] {
        loaded.filter { FileManager.default.contents(atPath: $0.path) != $0.contents }.map(\.path)
    }
}

/// Why the files relayd presents to NATS cannot work (``NATSClientFiles/check(_:now:)``).
public struct NATSClientFilesError: Error, CustomStringConvertible {
    public var description: String
}
