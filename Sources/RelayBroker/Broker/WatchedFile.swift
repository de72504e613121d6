import Foundation
import RelayTLS

/// What the file watcher knows about one configured path: the file it
/// resolves to and a digest of its bytes.
///
/// Kubernetes mounts a Secret or ConfigMap as `dir/crl.pem -> ..data/crl.pem`
/// with `..data -> ..2026_12_03_…`, and updates it by renaming a new `..data`
/// link over the old one. Neither the path's own link nor its modification
/// time changes then, so the observation follows every link (`realpath`)
/// and compares content, not timestamps: a swap, an in-place rewrite, or a
/// copy that kept the old modification time (`cp -p`, `rsync -t`) all show.
struct WatchedFile: Equatable, Sendable {
    enum State: Equatable, Sendable {
        /// The path resolves to `target`, whose bytes hash to `digest`.
        case content(target: String, digest: [UInt8])
        /// Missing, a dangling link, or unreadable (the reason, for logs).
        case unreadable(String)
    }

    let path: String
    let state: State

    /// Reads `path` now. Small files only (certificates, keys, CRLs, the
    /// config): the whole file is read and hashed on every poll.
    static func observe(_ path: String) -> WatchedFile {
        guard let resolved = realpath(path, nil) else {
            return WatchedFile(path: path, state: .unreadable("cannot resolve: \(String(cString: strerror(errno)))"))
        }
        let target = String(cString: resolved)
        free(resolved)
        guard let data = FileManager.default.contents(atPath: target) else {
            return WatchedFile(path: path, state: .unreadable("cannot read \(target)"))
        }
        return WatchedFile(path: path, state: .content(target: target, digest: SHA256.digest(data)))
    }

    /// Whether a reload is due: the bytes differ, or the file appeared or
    /// went away. A link now pointing at another file with the same bytes is
    /// not a change (nothing to reload).
    func differs(from earlier: WatchedFile) -> Bool {
        switch (state, earlier.state) {
        case (.content(_, let now), .content(_, let before)): return now != before
        case (.unreadable, .unreadable): return false
        default: return true
        }
    }
}
