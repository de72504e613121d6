import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RelayTLS

/// `relay_tls_certificate_not_after_seconds` and
/// `relay_tls_crl_next_update_seconds` (Unix time), set at start and after
/// every applied reload, so an alert sees a lapse coming:
/// `relay_tls_crl_next_update_seconds - time() < 3 * 86400`. A stale CRL
/// locks out every client it covers at their next handshake, and a reload
/// then ends their sessions (docs/security.md); nothing else warned before.
/// The CRL series exists only while a loaded CRL has a nextUpdate (0 or a
/// sentinel would fire, or silence, such an alert).
///
/// With the jetstream backend it also watches the certificate relayd
/// presents to NATS (``NATSClientFiles``, loaded at start and at each renewal):
/// `relay_nats_client_certificate_not_after_seconds`, and the same lines.
///
/// It also logs: at start and at every applied reload when a deadline
/// is within ``warningLead`` or past, and, once ``watch(on:)`` started it,
/// while relayd runs: when a deadline enters its lead, at the second it
/// passes (an error: from then on clients are refused), and once a day
/// while it stays near or past (``TLSDeadlineWarnings``).
final class TLSValidityGauges: Sendable {
    static let warningLead: TimeInterval = 7 * 86_400

    private struct State {
        var crlGauge: Gauge?
        var validity = TLSMaterialValidity(certificateNotAfter: nil, earliestCRL: nil)
        /// The NATS client certificate's file and expiry, set at start and at each renewal.
        var natsClient: (file: String, expiry: ChainExpiry)?
        var warnings = TLSDeadlineWarnings(lead: TLSValidityGauges.warningLead)
        var logger: Logger?
        var loop: (any EventLoop)?
        var timer: Scheduled<Void>?
    }

    private let state = NIOLockedValueBox(State())

    func update(_ validity: TLSMaterialValidity, metrics: BrokerMetrics, logger: Logger, now: Date = Date()) {
        if let notAfter = validity.certificateNotAfter {
            metrics.tlsCertificateNotAfter.record(notAfter.timeIntervalSince1970)
        }
        state.withLockedValue { state in
            if let crl = validity.earliestCRL {
                let gauge = state.crlGauge ?? metrics.crlNextUpdate()
                state.crlGauge = gauge
                gauge.record(crl.nextUpdate.timeIntervalSince1970)
            } else {
                state.crlGauge?.destroy()
                state.crlGauge = nil
            }
            state.validity = validity
            state.logger = logger
            // New material is announced afresh, whatever was logged before.
            state.warnings = TLSDeadlineWarnings(lead: Self.warningLead)
            check(&state, now: now)
        }
    }

    /// Adds the certificate relayd presents to NATS (jetstream backend, at
    /// start and after a reload that renewed it): its gauge, and its
    /// deadline to the checks (a renewed one is announced afresh).
    func followNATSClientCertificate(_ files: NATSClientFiles, metrics: BrokerMetrics, logger: Logger,
                                     now: Date = Date()) {
        guard let expiry = files.expiry else { return }
        metrics.natsClientCertificateNotAfter().record(expiry.notAfter.timeIntervalSince1970)
        state.withLockedValue { state in
            if state.natsClient != nil { state.warnings = TLSDeadlineWarnings(lead: Self.warningLead) }
            state.natsClient = (files.certificate, expiry)
            state.logger = logger
            check(&state, now: now)
        }
    }

    /// Re-checks the deadlines on `loop` until ``stopWatching()``.
    func watch(on loop: any EventLoop, now: Date = Date()) {
        state.withLockedValue { state in
            state.loop = loop
            schedule(&state, now: now)
        }
    }

    func stopWatching() {
        state.withLockedValue { state in
            state.timer?.cancel()
            state.timer = nil
            state.loop = nil
        }
    }

    private func timerFired() {
        state.withLockedValue { state in
            guard state.loop != nil else { return }
            check(&state, now: Date())
        }
    }

    private func check(_ state: inout State, now: Date) {
        if let logger = state.logger {
            for warning in state.warnings.check(Self.deadlines(state), now: now) {
                Self.log(warning, state: state, logger: logger)
            }
        }
        schedule(&state, now: now)
    }

    private func schedule(_ state: inout State, now: Date) {
        state.timer?.cancel()
        state.timer = nil
        guard let loop = state.loop else { return }
        let delay = state.warnings.nextCheck(Self.deadlines(state), now: now).timeIntervalSince(now)
        state.timer = loop.scheduleTask(in: .milliseconds(Int64((delay * 1_000).rounded(.up)))) { [weak self] in
            self?.timerFired()
        }
    }

    private static func deadlines(_ state: State) -> TLSDeadlineWarnings.Deadlines {
        TLSDeadlineWarnings.Deadlines(tls: state.validity, natsClientCertificate: state.natsClient?.expiry)
    }

    private static func log(_ warning: TLSDeadlineWarnings.Warning, state: State, logger: Logger) {
        let validity = state.validity
        let soon = warning.phase == .soon
        let message: Logger.Message
        let metadata: Logger.Metadata
        switch warning.deadline {
        case .serverCertificate:
            guard let notAfter = validity.certificateNotAfter else { return }
            message = soon
                ? "the server certificate expires soon: clients refuse the broker after it; issue a new one and reload"
                : "the server certificate has expired: clients refuse the broker; issue a new one and reload"
            metadata = ["not_after": "\(AdminJSON.timestamp(notAfter))"]
        case .crl:
            guard let crl = validity.earliestCRL else { return }
            message = soon
                ? "a loaded CRL reaches its next update soon: after it every client chain it covers is refused; issue a new CRL and reload"
                : "a loaded CRL is past its next update: every client chain it covers is refused; issue a new CRL and reload"
            metadata = ["issuer": "\(crl.issuer)", "next_update": "\(AdminJSON.timestamp(crl.nextUpdate))"]
        case .natsClientCertificate:
            guard let nats = state.natsClient else { return }
            // nats.c loaded the file at start and presents it at every reconnect: only a restart renews it.
            message = soon
                ? "the certificate relayd presents to NATS expires soon: after it NATS refuses this edge's next connection; renew it, then reload relayd (it connects to NATS again with the renewed files)"
                : "the certificate relayd presents to NATS has expired: NATS refuses this edge's next connection, so a NATS restart or a network failure takes the edge down; renew it, then reload relayd"
            metadata = ["file": "\(nats.file)", "subject": "\(nats.expiry.subject)",
                        "not_after": "\(AdminJSON.timestamp(nats.expiry.notAfter))"]
        }
        // Past the deadline clients are being refused: an error, not a warning.
        logger.log(level: soon ? .warning : .error, message, metadata: metadata)
    }
}
