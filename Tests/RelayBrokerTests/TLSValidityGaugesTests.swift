import Foundation
import Logging
import NIOConcurrencyHelpers
@testable import RelayBroker
import RelayTLS
import Testing

/// The warnings and series of ``TLSValidityGauges`` for deadlines a test
/// cannot give a real relayd cheaply (a server certificate days from its
/// end, a CRL already past its next update). The end-to-end side is
/// `TLSValidityMetricsTests`.
@Suite("TLS material deadlines: warnings and series")
struct TLSValidityGaugesTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let day: TimeInterval = 86_400

    @Test("a server certificate 3 days from notAfter is warned about; 30 days out is not")
    func serverCertificateWarning() {
        let soon = run(TLSMaterialValidity(certificateNotAfter: now + 3 * day, earliestCRL: nil))
        #expect(soon.warnings.count == 1 && soon.warnings.first?.contains("server certificate expires soon") == true, "\(soon.warnings)")
        #expect(soon.exposition.contains("relay_tls_certificate_not_after_seconds \((now + 3 * day).timeIntervalSince1970)"))
        let later = run(TLSMaterialValidity(certificateNotAfter: now + 30 * day, earliestCRL: nil))
        #expect(later.warnings.isEmpty, "\(later.warnings)")
    }

    @Test("a CRL past its next update is warned about as lapsed, naming its issuer; one a year out is not")
    func lapsedCRL() {
        let crl = TLSMaterialValidity.CRLDeadline(nextUpdate: now - 60, issuer: "CN=Issuing CA 2")
        let lapsed = run(TLSMaterialValidity(certificateNotAfter: now + 300 * day, earliestCRL: crl))
        #expect(lapsed.warnings.count == 1, "\(lapsed.warnings)")
        #expect(lapsed.warnings.first?.contains("past its next update") == true)
        #expect(lapsed.warnings.first?.contains("CN=Issuing CA 2") == true)
        let fresh = TLSMaterialValidity.CRLDeadline(nextUpdate: now + 365 * day, issuer: "CN=Issuing CA 2")
        #expect(run(TLSMaterialValidity(certificateNotAfter: now + 300 * day, earliestCRL: fresh)).warnings.isEmpty)
    }

    @Test("the CRL series follows the loaded CRLs: set, moved, then removed when a reload loads none")
    func crlSeriesFollowsReloads() {
        let metrics = BrokerMetrics()
        let gauges = TLSValidityGauges()
        let logger = Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })
        func update(_ nextUpdate: Date?) {
            gauges.update(TLSMaterialValidity(certificateNotAfter: now + 300 * day,
                                              earliestCRL: nextUpdate.map { .init(nextUpdate: $0, issuer: "CN=CA") }),
                          metrics: metrics, logger: logger, now: now)
        }
        update(now + 20 * day)
        #expect(metrics.exposition().contains("relay_tls_crl_next_update_seconds \((now + 20 * day).timeIntervalSince1970)"))
        update(now + 40 * day)
        #expect(metrics.exposition().contains("relay_tls_crl_next_update_seconds \((now + 40 * day).timeIntervalSince1970)"))
        update(nil)
        #expect(!metrics.exposition().contains("relay_tls_crl_next_update_seconds"), "\(metrics.exposition())")
    }

    private func run(_ validity: TLSMaterialValidity) -> (warnings: [String], exposition: String) {
        let metrics = BrokerMetrics()
        let captured = NIOLockedValueBox<[String]>([])
        let logger = Logger(label: "t", factory: { _ in CapturingLogHandler(lines: captured) })
        TLSValidityGauges().update(validity, metrics: metrics, logger: logger, now: now)
        return (captured.withLockedValue { $0 }, metrics.exposition())
    }
}

/// Keeps each warning-or-worse line as "message metadata".
private struct CapturingLogHandler: LogHandler {
    let lines: NIOLockedValueBox<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        guard level >= .warning else { return }
        let fields = (metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        lines.withLockedValue { $0.append("\(message) \(fields)") }
    }
}
