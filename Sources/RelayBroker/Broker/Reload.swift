import NIOConcurrencyHelpers

/// What started a reload; written to the log and the audit trail.
public enum ReloadTrigger: String, Sendable {
    /// SIGHUP (`systemctl reload`, `kill -HUP`).
    case sighup
    /// `[reload] watch = true` and a watched file changed.
    case fileChange = "file_change"
    /// An authorized admin request (`relayctl reload`).
    case admin
    /// Code in this process (tests, embedding).
    case api
}

/// The result of one reload: applied as a whole, or refused as a whole (the
/// running configuration stays). Never partly applied.
public enum ReloadOutcome: Sendable, Equatable {
    /// `sessions` were re-evaluated under the new policy and TLS context;
    /// `restartRequired` names changed sections that only apply at restart.
    case applied(sessions: Int, restartRequired: [String])
    /// Why the new configuration was not applied (the previous one stays).
    case refused(reason: String)

    public var isApplied: Bool {
        if case .applied = self { return true }
        return false
    }
}

/// The broker's reload entry point as seen from inside it (the admin
/// surface has the ``BrokerContext``, not the ``Broker``). ``Broker/start``
/// installs the handler; before that, or after shutdown, a reload is refused.
final class ReloadEntry: Sendable {
    private let handler = NIOLockedValueBox<(@Sendable (ReloadTrigger) -> ReloadOutcome)?>(nil)

    func install(_ body: @escaping @Sendable (ReloadTrigger) -> ReloadOutcome) {
        handler.withLockedValue { $0 = body }
    }

    func run(_ trigger: ReloadTrigger) -> ReloadOutcome {
        guard let body = handler.withLockedValue({ $0 }) else {
            return .refused(reason: "the broker is not running")
        }
        return body(trigger)
    }
}

extension BrokerContext {
    /// Re-reads the config file and every TLS file and applies them if the
    /// whole configuration validates (see ``Broker/reload(trigger:)``).
    /// For the admin surface's `reload` operation: `trigger: .admin`.
    public func reload(trigger: ReloadTrigger) -> ReloadOutcome {
        reloadEntry.run(trigger)
    }
}
