import Foundation
import RelayStore
import RelayTLS

/// What an edge presents to NATS (`[storage.jetstream]` `ca`, `certificate`,
/// `private_key`), as read at start or at the last reload that took renewed
/// files. nats.c loads these files when relayd connects, and presents the
/// same certificate at every reconnect of that connection; a reload that
/// finds them changed checks them and has the log connect again with them
/// (``CredentialRenewing``, docs/cluster.md "Renewing the edge's NATS
/// certificate"). The broker keeps what the connection in use presents, to
/// warn before that certificate lapses (after it, NATS refuses the edge's
/// next connection: ``TLSValidityGauges``) and to tell renewed files.
struct NATSClientFiles: Sendable {
    /// Each file's path and its contents when read (nil: unreadable then;
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
        guard let paths = Self.paths(of: configuration) else { return nil }
        self.init(ca: paths.ca, certificate: paths.certificate, privateKey: paths.privateKey)
    }

    /// The three paths `configuration` names, without reading the files;
    /// nil unless it uses the jetstream backend.
    static func paths(of configuration: BrokerConfiguration) -> CredentialFiles? {
        guard configuration.storage.backend == .jetstream, let nats = configuration.storage.jetstream else { return nil }
        return CredentialFiles(ca: nats.ca, certificate: nats.certificate, privateKey: nats.privateKey)
    }

    private init(ca: String, certificate: String, privateKey: String) {
        loaded = [ca, certificate, privateKey].map { ($0, FileManager.default.contents(atPath: $0)) }
        self.certificate = certificate
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

    /// The same paths, read again now (a renewal's files).
    func reread() -> NATSClientFiles {
        NATSClientFiles(ca: loaded[0].path, certificate: certificate, privateKey: loaded[2].path)
    }

    /// The three paths, as the log connects with them.
    var paths: CredentialFiles {
        CredentialFiles(ca: loaded[0].path, certificate: certificate, privateKey: loaded[2].path)
    }

    /// The paths of `next` that differ from these, in config order.
    func newPaths(in next: CredentialFiles) -> [String] {
        zip([paths.ca, paths.certificate, paths.privateKey], [next.ca, next.certificate, next.privateKey])
            .filter { $0.0 != $0.1 }.map(\.1)
    }

    /// The files whose contents differ from what was read, in config order.
    func changedOnDisk() -> [String] {
        loaded.filter { FileManager.default.contents(atPath: $0.path) != $0.contents }.map(\.path)
    }
}

/// Why the files relayd presents to NATS cannot work (``NATSClientFiles/check(_:now:)``).
public struct NATSClientFilesError: Error, CustomStringConvertible {
    public var description: String
}
