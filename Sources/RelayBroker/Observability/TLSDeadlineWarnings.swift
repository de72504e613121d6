import Foundation
import RelayTLS

/// When relayd warns about the server certificate's notAfter, the loaded
/// CRLs' nextUpdate and (with the jetstream backend) the notAfter of the
/// certificate it presents to NATS, while it runs, not only at start and
/// reload: a deadline
/// that enters its warning lead, a deadline that passes (a lapsed CRL refuses
/// every client chain it covers from that second), and a reminder every
/// ``reminderInterval`` while one is inside its lead or past. Pure: the
/// caller keeps the state and schedules the next check
/// (``TLSValidityGauges``).
struct TLSDeadlineWarnings {
    static let reminderInterval: TimeInterval = 86_400
    /// The longest a check sleeps: a timer on the monotonic clock this long
    /// cannot drift far from a wall-clock deadline.
    static let longestSleep: TimeInterval = 3_600

    enum Deadline: Hashable, CaseIterable {
        case serverCertificate
        case crl
        /// The certificate relayd presents to NATS, loaded at start and at each renewal (``NATSClientFiles``).
        case natsClientCertificate
    }

    /// Every date watched: the TLS material's (renewed by a reload) and the
    /// NATS client certificate's (renewed by a reload that finds new files).
    struct Deadlines: Equatable {
        var tls: TLSMaterialValidity
        var natsClientCertificate: ChainExpiry?

        init(tls: TLSMaterialValidity, natsClientCertificate: ChainExpiry? = nil) {
            self.tls = tls
            self.natsClientCertificate = natsClientCertificate
        }
    }

    enum Phase: Equatable {
        /// Within the warning lead (at most `lead` away), not yet reached.
        case soon
        /// Reached or past.
        case lapsed
    }

    struct Warning: Equatable {
        var deadline: Deadline
        var phase: Phase
    }

    let lead: TimeInterval
    /// The last warning given per deadline: its phase and when.
    private var warned: [Deadline: (phase: Phase, at: Date)] = [:]

    init(lead: TimeInterval) {
        self.lead = lead
    }

    static func date(of deadline: Deadline, in deadlines: Deadlines) -> Date? {
        switch deadline {
        case .serverCertificate: deadlines.tls.certificateNotAfter
        case .crl: deadlines.tls.earliestCRL?.nextUpdate
        case .natsClientCertificate: deadlines.natsClientCertificate?.notAfter
        }
    }

    func phase(of date: Date, now: Date) -> Phase? {
        if date <= now { return .lapsed }
        return date.timeIntervalSince(now) <= lead ? .soon : nil
    }

    /// The warnings due at `now`: a deadline whose phase changed since its
    /// last warning, or whose last warning is a reminder interval old.
    mutating func check(_ deadlines: Deadlines, now: Date) -> [Warning] {
        var due: [Warning] = []
        for deadline in Deadline.allCases {
            guard let date = Self.date(of: deadline, in: deadlines), let phase = phase(of: date, now: now) else {
                warned[deadline] = nil
                continue
            }
            if let last = warned[deadline], last.phase == phase,
               now.timeIntervalSince(last.at) < Self.reminderInterval {
                continue
            }
            warned[deadline] = (phase, now)
            due.append(Warning(deadline: deadline, phase: phase))
        }
        return due
    }

    /// When ``check(_:now:)`` must run next: the start of a deadline's lead,
    /// the deadline itself, or a reminder, but never more than
    /// ``longestSleep`` from `now` and never less than a second.
    func nextCheck(_ deadlines: Deadlines, now: Date) -> Date {
        var next = now + Self.longestSleep
        for deadline in Deadline.allCases {
            guard let date = Self.date(of: deadline, in: deadlines) else { continue }
            let candidate: Date
            switch (phase(of: date, now: now), warned[deadline]) {
            case (nil, _):
                candidate = date - lead
            case (.soon?, let last?):
                candidate = min(date, last.at + Self.reminderInterval)
            case (.soon?, nil):
                candidate = now
            case (.lapsed?, let last?):
                candidate = last.at + Self.reminderInterval
            case (.lapsed?, nil):
                candidate = now
            }
            next = min(next, candidate)
        }
        return max(next, now + 1)
    }

    /// ``check(_:now:)`` for the TLS material alone.
    mutating func check(_ validity: TLSMaterialValidity, now: Date) -> [Warning] {
        check(Deadlines(tls: validity), now: now)
    }

    /// ``nextCheck(_:now:)`` for the TLS material alone.
    func nextCheck(_ validity: TLSMaterialValidity, now: Date) -> Date {
        nextCheck(Deadlines(tls: validity), now: now)
    }
}
