import Foundation
@testable import RelayBroker
import RelayTLS
import Testing

/// When relayd warns about a certificate or CRL deadline while it runs
/// (``TLSDeadlineWarnings``): entering the lead, passing the deadline,
/// daily reminders, and when it wakes up to check. The end-to-end side is
/// `TLSValidityMetricsTests/crlLapsesWhileRunning`.
@Suite("TLS deadline warnings while relayd runs")
struct TLSDeadlineWarningsTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)
    let day: TimeInterval = 86_400
    let lead: TimeInterval = 7 * 86_400

    private func crl(_ nextUpdate: Date) -> TLSMaterialValidity {
        TLSMaterialValidity(certificateNotAfter: start + 400 * day,
                            earliestCRL: .init(nextUpdate: nextUpdate, issuer: "CN=CA"))
    }

    @Test("a CRL 10 days out: silent, then 'soon' when its lead starts, then 'lapsed' at the second it passes")
    func entersLeadThenLapses() {
        let validity = crl(start + 10 * day)
        var warnings = TLSDeadlineWarnings(lead: lead)
        #expect(warnings.check(validity, now: start).isEmpty)
        // The wake-ups step through at most an hour each until the lead starts.
        var now = start
        var steps = 0
        while now < start + 3 * day, steps < 200 {
            now = warnings.nextCheck(validity, now: now)
            steps += 1
            if now < start + 3 * day { #expect(warnings.check(validity, now: now).isEmpty, "warned at \(now)") }
        }
        #expect(now == start + 3 * day, "the wake-up is not at the lead's start: \(now)")
        #expect(warnings.check(validity, now: now) == [.init(deadline: .crl, phase: .soon)])
        // Then hourly wake-ups, a reminder a day later and, last, the deadline itself.
        #expect(warnings.nextCheck(validity, now: now + 60) == now + 60 + TLSDeadlineWarnings.longestSleep)
        #expect(warnings.check(validity, now: now + day) == [.init(deadline: .crl, phase: .soon)])
        #expect(warnings.check(validity, now: now + day + 3_600).isEmpty, "a second warning within the day")
        let deadline = start + 10 * day
        var t = now + day + 3_600
        while t < deadline { t = warnings.nextCheck(validity, now: t); if t < deadline { _ = warnings.check(validity, now: t) } }
        #expect(t == deadline, "no wake-up at the deadline: \(t)")
        #expect(warnings.check(validity, now: deadline) == [.init(deadline: .crl, phase: .lapsed)])
        #expect(warnings.check(validity, now: deadline + 60).isEmpty)
        #expect(warnings.nextCheck(validity, now: deadline + 60) == deadline + 60 + TLSDeadlineWarnings.longestSleep)
        #expect(warnings.check(validity, now: deadline + day) == [.init(deadline: .crl, phase: .lapsed)])
    }

    @Test("a deadline already inside the lead warns at once; a year out never warns and wakes hourly")
    func startStates() {
        var near = TLSDeadlineWarnings(lead: lead)
        #expect(near.check(crl(start + 2 * day), now: start) == [.init(deadline: .crl, phase: .soon)])
        var lapsed = TLSDeadlineWarnings(lead: lead)
        #expect(lapsed.check(crl(start - 1), now: start) == [.init(deadline: .crl, phase: .lapsed)])
        var far = TLSDeadlineWarnings(lead: lead)
        #expect(far.check(crl(start + 365 * day), now: start).isEmpty)
        #expect(far.nextCheck(crl(start + 365 * day), now: start) == start + TLSDeadlineWarnings.longestSleep)
    }

    @Test("the server certificate and the CRL are tracked apart: each warns on its own phase change")
    func twoDeadlines() {
        var warnings = TLSDeadlineWarnings(lead: lead)
        let both = TLSMaterialValidity(certificateNotAfter: start + 5 * day,
                                       earliestCRL: .init(nextUpdate: start + day / 2, issuer: "CN=CA"))
        #expect(warnings.check(both, now: start) == [.init(deadline: .serverCertificate, phase: .soon),
                                                      .init(deadline: .crl, phase: .soon)])
        #expect(warnings.check(both, now: start + day / 2) == [.init(deadline: .crl, phase: .lapsed)])
        #expect(warnings.check(both, now: start + 5 * day) == [.init(deadline: .serverCertificate, phase: .lapsed),
                                                                .init(deadline: .crl, phase: .lapsed)])
    }

    @Test("a renewed CRL (a reload) ends the warnings: nothing more until its own lead")
    func renewalEndsWarnings() {
        var warnings = TLSDeadlineWarnings(lead: lead)
        #expect(!warnings.check(crl(start + day), now: start).isEmpty)
        let renewed = crl(start + 30 * day)
        #expect(warnings.check(renewed, now: start + 60).isEmpty)
        #expect(warnings.nextCheck(renewed, now: start + 60) == start + 60 + TLSDeadlineWarnings.longestSleep)
    }

    @Test("a check never sleeps less than a second, so a deadline at 'now' cannot spin the loop")
    func neverSpins() {
        var warnings = TLSDeadlineWarnings(lead: lead)
        let validity = crl(start)
        _ = warnings.check(validity, now: start)
        #expect(warnings.nextCheck(validity, now: start) >= start + 1)
        let fresh = TLSDeadlineWarnings(lead: lead)
        #expect(fresh.nextCheck(validity, now: start) == start + 1)
    }
}
