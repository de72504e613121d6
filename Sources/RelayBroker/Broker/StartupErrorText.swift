import Foundation
import NIOCore

/// relayd's refused starts as one plain sentence each: what could not be
/// done, on which path or address, and what to do about it. The raw texts
/// (NIO's "bind(descriptor:ptr:bytes:) ... (errno: 98)", strerror's
/// wording, Foundation's "The operation could not be completed") say none
/// of that to an operator; the errno picks the sentence instead.
enum StartupErrorText {
    /// A listener (`[server] listen`, `[metrics] listen`) that could not be
    /// opened. `what` completes "cannot …" ("listen", "serve metrics");
    /// `change` names the setting to change.
    static func cannotListen(_ what: String, on address: String, error: any Error, change: String) -> String {
        let start = "cannot \(what) on \(address): "
        switch (error as? IOError)?.errnoCode {
        case EADDRINUSE?:
            return start + "the address is in use by another process (another relayd?); stop it, or \(change)"
        case EACCES?:
            return start + "ports below 1024 need root or CAP_NET_BIND_SERVICE (AmbientCapabilities= in a systemd unit); "
                + "grant it, or \(change)"
        case EADDRNOTAVAIL?:
            return start + "the host is not an address of this machine; \(change)"
        case let code?:
            return start + "\(String(cString: strerror(code))); \(change)"
        case nil:
            return start + "\(error); \(change)"
        }
    }

    /// The data directory relayd cannot write in (`creating`: cannot create
    /// it, with `relayd --init`); `code` is the errno of the failed mkdir or
    /// of the first file relayd creates there (its lock file).
    static func dataDirectoryNotWritable(_ path: String, code: Int32, creating: Bool) -> String {
        let start = creating ? "cannot create the data directory \(path): " : "cannot write in the data directory \(path): "
        let elsewhere = "point [storage] path or --data-dir at a directory relayd can write"
        switch code {
        case EROFS:
            return start + "it is on a read-only file system; remount it read-write, or \(elsewhere)"
        case EACCES, EPERM:
            return start + "relayd (uid \(geteuid())) has no write permission \(creating ? "in its parent" : "there"); "
                + "grant it (chown or chmod), or \(elsewhere)"
        case ENOSPC, EDQUOT:
            return start + "its file system is full (or the quota is used up); free space, or \(elsewhere)"
        case ENOTDIR:
            return start + "a part of the path is a file, not a directory; \(elsewhere)"
        default:
            return start + "\(String(cString: strerror(code))); \(elsewhere)"
        }
    }
}
