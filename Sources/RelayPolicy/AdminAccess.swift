/// What a rule's `admin` list grants over the broker's admin operations
/// (`relayctl status`, `purge` …, Protocol/relay-v1.md §4.15). Default
/// `none`: an identity may use admin operations only when a rule that
/// matches it grants them. An identity's access is the highest any of its
/// matched rules grants.
public enum AdminAccess: Int, Sendable, Comparable, CustomStringConvertible {
    /// No admin operation is allowed (the default).
    case none = 0
    /// Listings: status, connections, subscriptions, durables, topics.
    case read = 1
    /// Also what changes state: purge, durable delete, disconnect, backup, reload.
    case write = 2

    public static func < (a: AdminAccess, b: AdminAccess) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .none: return "none"
        case .read: return "read"
        case .write: return "write"
        }
    }

    /// The access an `admin = [...]` list grants: `["read"]` or
    /// `["read", "write"]` (`"write"` alone means the same as both).
    /// A failure names the first entry that is neither.
    static func parse(_ list: [String]) -> Result<AdminAccess, InvalidAdminGrant> {
        var access = AdminAccess.none
        for (i, entry) in list.enumerated() {
            switch entry {
            case "read": access = max(access, .read)
            case "write": access = .write
            default:
                return .failure(InvalidAdminGrant(message: "admin[\(i)] is \"\(entry)\"; the admin grants are \"read\" (listings) and \"write\" (purge, delete, disconnect, backup, reload)"))
            }
        }
        return .success(access)
    }
}

/// An `admin` list entry other than "read" or "write".
struct InvalidAdminGrant: Error {
    var message: String
}
