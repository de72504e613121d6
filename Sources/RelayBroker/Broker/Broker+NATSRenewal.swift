import Foundation
import RelayStore
import RelayTLS

/// A reload that finds the files relayd presents to NATS changed on disk
/// (a renewed certificate: docs/cluster.md, "Renewing the edge's NATS
/// certificate"): they are checked as `--check-config` checks them, the log
/// connects to NATS with them, and once the rest of the reload is installed
/// every NATS request, publish and the live tail move to that connection
/// (``CredentialRenewing``). On any failure the edge keeps the connection
/// it has; the rest of the reload is still applied (a CRL must not wait for
/// NATS), `storage.jetstream` is listed under `restart_required`, and the
/// reason is logged and audited. The next reload tries the files again.
struct NATSRenewal {
    /// The renewed files, as checked.
    var files: NATSClientFiles
    /// The files that changed, in config order.
    var changed: [String]
    /// Moves everything to the new connection (``CredentialRenewing``).
    var switchConnection: @Sendable () -> Void

    /// Switches, then follows the renewed certificate's expiry and logs it.
    func switchOver(_ broker: Broker) {
        switchConnection()
        broker.natsClientFiles.withLockedValue { $0 = files }
        let context = broker.context
        context.metrics.tlsValidity.followNATSClientCertificate(files, metrics: context.metrics, logger: context.logger)
        var metadata: [String: String] = ["files": changed.joined(separator: ",")]
        if let expiry = files.expiry {
            metadata["subject"] = expiry.subject
            metadata["not_after"] = AdminJSON.timestamp(expiry.notAfter)
        }
        context.logger.notice("relayd presents the renewed NATS certificate from now on: its NATS connection was replaced",
                              metadata: metadata.mapValues { "\($0)" })
    }
}

/// Why renewed NATS files were not taken: logged and audited, and the rest
/// of the reload is applied (``Broker/reload(trigger:)``).
struct NATSRenewalRefused: Error, CustomStringConvertible {
    var description: String
}

extension Broker {
    /// nil when the files are unchanged (or the backend is not NATS). The
    /// files are those `next` names: at the paths in use, renewed when their
    /// contents changed; or at new paths (a reloaded config naming other
    /// files), taken whatever their contents.
    func prepareNATSRenewal(next: BrokerConfiguration, now: Date = Date()) throws(NATSRenewalRefused) -> NATSRenewal? {
        guard let presented = natsClientFiles.withLockedValue({ $0 }) else { return nil }
        let renewed: NATSClientFiles
        let changed: [String]
        // Paths compared before any file is read. A config that leaves the
        // jetstream backend waits for a restart (`storage`): no renewal.
        if let named = NATSClientFiles.paths(of: next), named != presented.paths, let files = NATSClientFiles(next) {
            renewed = files
            changed = presented.newPaths(in: named)
        } else {
            changed = presented.changedOnDisk()
            guard !changed.isEmpty else { return nil }
            renewed = presented.reread()
        }
        let kept = "the renewed NATS files (\(changed.joined(separator: ", "))) were not taken; relayd keeps the connection it has"
        do {
            try renewed.check(now: now)
        } catch {
            throw NATSRenewalRefused(description: "\(kept): \(error.description)")
        }
        guard let log = context.store as? any CredentialRenewing else {
            throw NATSRenewalRefused(description: "\(kept): this storage backend cannot reconnect; restart relayd")
        }
        do {
            return NATSRenewal(files: renewed, changed: changed, switchConnection: try log.connectWithRenewedCredentials(renewed.paths))
        } catch {
            throw NATSRenewalRefused(description: "\(kept): \(error.description)")
        }
    }
}
