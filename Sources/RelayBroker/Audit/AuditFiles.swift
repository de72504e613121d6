import Foundation

/// The files that make up one trail: `<path>` (being written), the rotated
/// `<path>.000001`, `<path>.000002`, … (oldest first), the `<path>.checkpoint`
/// sidecar and the `<path>.lock` that keeps a second relayd out.
enum AuditFiles {
    /// Rotated files, oldest first, as (index, full path).
    static func rotated(_ path: String) -> [(index: Int, path: String)] {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + "."
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix(prefix) else { return nil }
            let suffix = name.dropFirst(prefix.count)
            guard suffix.count == 6, suffix.allSatisfy(\.isASCII), let index = Int(suffix) else { return nil }
            return (index, url.deletingLastPathComponent().appendingPathComponent(name).path)
        }.sorted { $0.0 < $1.0 }
    }

    static func rotatedName(_ path: String, index: Int) -> String {
        let digits = String(index)
        return path + "." + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// Every file of the trail in chain order (rotated, then the live file if present).
    static func chainOrder(_ path: String) -> [String] {
        var files = rotated(path).map(\.path)
        if FileManager.default.fileExists(atPath: path) { files.append(path) }
        return files
    }

    /// Takes `<path>.lock` with flock(LOCK_EX|LOCK_NB) and writes our PID in
    /// it. The lock (not the trail) is locked because rotation renames the
    /// trail; the lock file stays put. Returns the open descriptor, which
    /// holds the lock until it is closed (or the process dies).
    static func lock(_ path: String) throws(AuditError) -> FileHandle {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let folder = (path as NSString).deletingLastPathComponent
            let reason = switch errno {
            case ENOENT: "cannot create the lock file: its folder \(folder) does not exist; create it (owned by relayd's user, mode 0700) or change [audit] path"
            case EACCES: "cannot create the lock file: relayd (uid \(getuid())) has no write permission in \(folder); grant it (chown or chmod) or change [audit] path"
            default: "cannot create the lock file (\(String(cString: strerror(errno)))); check that \(folder) exists and relayd can write in it"
            }
            throw AuditError.cannotOpen(path: lockPath, reason: reason)
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? handle.readToEnd()).map { String(decoding: $0, as: UTF8.self) }?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw AuditError.inUse(path: path, pid: holder.flatMap { Int32($0) })
        }
        _ = ftruncate(fd, 0)
        try? handle.write(contentsOf: Data("\(getpid())\n".utf8))
        return handle
    }

    /// Opens the live file for appending (created 0600), returning it and its size.
    static func openForAppend(_ path: String) throws(AuditError) -> (FileHandle, UInt64) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
                .map { " (mode 0" + String($0 & 0o777, radix: 8) + ")" } ?? ""
            let reason = switch code {
            case EACCES: "cannot open it for appending: relayd (uid \(getuid())) may not write it\(mode); grant it (chown or chmod 600) or change [audit] path"
            case EROFS: "cannot open it for appending: it is on a read-only file system; remount it read-write or change [audit] path"
            default: "cannot open it for appending (\(String(cString: strerror(code)))); check the folder exists and its permissions"
            }
            throw AuditError.cannotOpen(path: path, reason: reason)
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        guard let size = try? handle.seekToEnd() else {
            throw AuditError.cannotOpen(path: path, reason: "cannot find its end")
        }
        return (handle, size)
    }
}
