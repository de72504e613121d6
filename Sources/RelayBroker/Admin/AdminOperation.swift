import RelayCore
import RelayPolicy

/// The admin operations of §4.15, by their wire names, with the grant each
/// needs. Reading needs `admin = ["read"]`; anything that changes state or
/// copies the data out needs `"write"`.
public enum AdminOperation: String, Sendable, CaseIterable {
    case status, connections, subscriptions, durables, topics
    case purge
    case durableDelete = "durable_delete"
    case disconnect, backup, reload

    public var requiredAccess: AdminAccess {
        switch self {
        case .status, .connections, .subscriptions, .durables, .topics: return .read
        // backup copies every message out of the broker: as sensitive as a change.
        case .purge, .durableDelete, .disconnect, .backup, .reload: return .write
        }
    }
}

/// The software version `status` reports.
public enum RelayVersion {
    public static let current = "0.4.0-dev"
}
