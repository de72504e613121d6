import Foundation
import RelayCore

/// The paths a start opens, checked by `relayd --check-config` the way the
/// start checks them, so that a config the check passes does not then fail
/// the start with 66 (the upgrade runbook checks before it restarts). Not
/// part of reload: a running relayd already holds its data directory and
/// audit trail.
public enum StartPathCheck {
    /// Notes for the operator (a data directory that the start will need
    /// `--init` for); throws what the start would refuse, with its status.
    public static func check(_ configuration: BrokerConfiguration) throws(BrokerStartError) -> [String] {
        var notes: [String] = []
        let data = configuration.storage.path
        switch kind(of: data) {
        case .directory: break
        case .other: throw BrokerStartError(message: DataDirectory.isAFileText(data), exitCode: RelayExit.noInput.rawValue)
        case .missing:
            notes.append("note: the data directory \(data) does not exist yet; start relayd once with --init to create it")
        }
        if let trail = configuration.audit.path {
            let folder = URL(fileURLWithPath: trail).deletingLastPathComponent().path
            // A trail directly in a data directory that --init will create is fine.
            let createdByInit = folder == URL(fileURLWithPath: data).standardizedFileURL.path && kind(of: data) == .missing
            if kind(of: folder) != .directory && !createdByInit {
                throw BrokerStartError(
                    message: "the audit trail's folder \(folder) does not exist (or is not a folder); create it (owned by relayd's user, mode 0700) or change [audit] path",
                    exitCode: RelayExit.noInput.rawValue)
            }
        }
        return notes
    }

    enum Kind { case directory, other, missing }

    static func kind(of path: String) -> Kind {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .missing }
        return isDirectory.boolValue ? .directory : .other
    }
}
