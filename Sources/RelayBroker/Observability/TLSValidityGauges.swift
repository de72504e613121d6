import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import RelayTLS

/// `relay_tls_certificate_not_after_seconds` and
/// `relay_tls_crl_next_update_seconds` (Unix time), set at start and after
/// every applied reload, so an alert sees a lapse coming:
/// `relay_tls_crl_next_update_seconds - time() < 3 * 86400`. A stale CRL
/// locks out every client it covers at their next handshake, and a reload
/// then ends their sessions (docs/security.md); nothing else warned before.
/// The CRL series exists only while a loaded CRL has a nextUpdate (0 or a
/// sentinel would fire, or silence, such an alert). Also logs a warning
/// when either is within ``warningLead`` or already past.
final class TLSValidityGauges: Sendable {
    static let warningLead: TimeInterval = 7 * 86_400

    private let crlGauge = NIOLockedValueBox<Gauge?>(nil)

    func update(_ validity: TLSMaterialValidity, metrics: BrokerMetrics, logger: Logger, now: Date = Date()) {
        if let notAfter = validity.certificateNotAfter {
            metrics.tlsCertificateNotAfter.record(notAfter.timeIntervalSince1970)
            if notAfter.timeIntervalSince(now) < Self.warningLead {
                logger.warning("the server certificate expires soon: clients refuse the broker after it; issue a new one and reload",
                               metadata: ["not_after": "\(AdminJSON.timestamp(notAfter))"])
            }
        }
        crlGauge.withLockedValue { gauge in
            guard let crl = validity.earliestCRL else {
                gauge?.destroy()
                gauge = nil
                return
            }
            let current = gauge ?? metrics.crlNextUpdate()
            gauge = current
            current.record(crl.nextUpdate.timeIntervalSince1970)
            if crl.nextUpdate.timeIntervalSince(now) < Self.warningLead {
                let lapsed = crl.nextUpdate <= now
                logger.warning(lapsed
                    ? "a loaded CRL is past its next update: every client chain it covers is refused; issue a new CRL and reload"
                    : "a loaded CRL reaches its next update soon: after it every client chain it covers is refused; issue a new CRL and reload",
                    metadata: ["issuer": "\(crl.issuer)", "next_update": "\(AdminJSON.timestamp(crl.nextUpdate))"])
            }
        }
    }
}
