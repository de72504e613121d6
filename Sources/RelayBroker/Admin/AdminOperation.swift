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

    /// The keys the operation's JSON body may carry (§4.15). A body with any
    /// other key is refused before anything runs: an option this broker does
    /// not have must not be ignored (a purge with `"older_than"` would
    /// otherwise delete everything under its filter).
    public var argumentKeys: [String] {
        switch self {
        case .purge: return ["filter", "confirm"]
        case .durableDelete: return ["name", "owner"]
        case .disconnect: return ["id"]
        case .status, .connections, .subscriptions, .durables, .topics, .backup, .reload: return []
        }
    }

    /// The refusal of `unknown` keys: what the operation takes, and that nothing was done.
    func unknownArgumentsText(_ unknown: [String]) -> String {
        let takes = argumentKeys.isEmpty ? "takes no arguments" : "takes only " + argumentKeys.joined(separator: " and ")
        let named = unknown.map { "'\($0)'" }.joined(separator: ", ")
        let them = unknown.count == 1 ? "it" : "them"
        return "\(rawValue) \(takes), not \(named); nothing was done (remove \(them), or run a relayd that knows \(them))"
    }
}

// The software version `status` reports is RelayCore's RelayVersion (the
// one version source of every binary's --version, build_info and status).
