import Foundation
import RelayStore

/// A renewed NATS client certificate, taken without a restart (issue #20;
/// docs/cluster.md, "Renewing the edge's NATS certificate"). nats.c copies
/// the certificate, key and CA into a connection's TLS context when the
/// connection is made, and nats.h 3.4.1 has no call that changes them on a
/// live connection: every reconnect of that connection presents the same
/// certificate. So a renewal opens a second connection with the files as
/// they are now and moves everything to it:
///
/// 1. ``connectWithRenewedCredentials(_:)``: connect with the files (at the
///    configured paths or new ones), open the cursor bucket
///    (a JetStream request: NATS accepted the new certificate and JetStream
///    answers on it). Nothing else changes; a failure leaves the old
///    connection in use.
/// 2. The returned closure, on the writer queue (the safe point: no round
///    is being sent, no cursor commit, deletion or prune runs): every later
///    request takes the new connection; the live tail moves to it after
///    the old consumer's last handler call, from the next sequence; then the
///    writer waits until every round sent on the old connection has its
///    outcome (a record retried meanwhile goes out on the new connection with
///    the same `Nats-Msg-Id`, so JetStream stores it once), so no round on
///    the new connection can overtake one on the old.
/// 3. The old connection is freed (closed) when the last round or request
///    that took it ends: ``NATSConnection``'s deinit.
extension JetStreamMessageLog: CredentialRenewing {
    public func connectWithRenewedCredentials(_ files: CredentialFiles) throws(CredentialRenewalError) -> @Sendable () -> Void {
        guard !isClosed else { throw CredentialRenewalError("the message log is closed") }
        let fresh: NATSConnection
        do {
            let wait = settings.requestTimeout.wholeMilliseconds
            // The servers and name stay; the files may be at new paths (a
            // reloaded config naming them), which nats.c reads here.
            var endpoint = settings.endpoint
            (endpoint.caFile, endpoint.certificateFile, endpoint.privateKeyFile) = (files.ca, files.certificate, files.privateKey)
            fresh = try NATSConnection.connect(endpoint, timeoutMs: wait)
            try fresh.openBucket(settings.cursorBucket, replicas: settings.replicas)
        } catch {
            throw CredentialRenewalError("NATS did not accept a connection with the renewed files (\(error))")
        }
        return { self.switchConnection(to: fresh) }
    }

    /// Step 2 above; returns once the old connection has nothing left to send.
    func switchConnection(to fresh: NATSConnection) {
        writer.sync {
            guard let old = replaceConnection(with: fresh) else { return }
            if let error = tail.move(to: fresh, stream: settings.stream, subject: "\(settings.subjectPrefix).>") {
                logger.error("the live tail could not move to the renewed NATS connection: \(error)")
            }
            acks.sync {}
            // Free the old one now if nothing holds it; otherwise when the last holder ends.
            _ = old
        }
    }
}
