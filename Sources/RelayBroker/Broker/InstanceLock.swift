import Foundation
import Logging
import RelayCore

/// The data directory. A missing one is created only when asked (`relayd
/// --init`): a mistyped `[storage] path` or `--data-dir` must not silently
/// become a new, empty store.
enum DataDirectory {
    static func prepare(_ path: String, create: Bool, configFile: String, logger: Logger) throws(BrokerStartError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw BrokerStartError(message: isAFileText(path), exitCode: RelayExit.noInput.rawValue)
            }
            return
        }
        guard create else {
            let config = configFile.isEmpty ? "" : " --config \(configFile)"
            throw BrokerStartError(message: "data directory \(path) does not exist; run relayd --init\(config) to create a new, empty store (or correct [storage] path / --data-dir if it is mistyped)", exitCode: RelayExit.noInput.rawValue)
        }
        let code = makeDirectories(path)
        guard code == 0 else {
            throw BrokerStartError(message: StartupErrorText.dataDirectoryNotWritable(path, code: code, creating: true),
                                   exitCode: RelayExit.noInput.rawValue)
        }
        logger.notice("created the data directory (--init): a new, empty store", metadata: ["path": "\(path)"])
    }

    static func isAFileText(_ path: String) -> String {
        "the data directory \(path) is a file, not a directory; check [storage] path or --data-dir"
    }

    /// `mkdir -p path` with mode 0700: 0, or the errno of the step that
    /// failed (the refusal names its cause from it; Foundation's error for
    /// this carries no errno on Linux).
    static func makeDirectories(_ path: String) -> Int32 {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            guard mkdir(current, 0o700) != 0 else { continue }
            let code = errno
            guard code == EEXIST else { return code }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: current, isDirectory: &isDirectory), isDirectory.boolValue else {
                return ENOTDIR
            }
        }
        return 0
    }
}

/// One relayd per data directory: flock(LOCK_EX|LOCK_NB) on
/// `<data>/relayd.lock`, which holds the owner's PID. The store's own lock file
/// lets several processes open one store, so it cannot be the guard. The
/// kernel drops the lock when the process dies (SIGKILL included), so a
/// stale file never blocks a restart.
enum InstanceLock {
    static let fileName = "relayd.lock"

    /// Takes the lock; the returned handle holds it until closed.
    static func acquire(dataDirectory: String) throws(BrokerStartError) -> FileHandle {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent(fileName).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            // The first file relayd writes there: a directory it cannot
            // write (read-only mount, permissions) is refused here.
            let code = errno
            throw BrokerStartError(message: StartupErrorText.dataDirectoryNotWritable(dataDirectory, code: code, creating: false),
                                   exitCode: RelayExit.noInput.rawValue)
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? handle.readToEnd()).map { String(decoding: $0, as: UTF8.self) }?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let who = holder.flatMap { Int32($0) }.map { "relayd process \($0)" } ?? "another relayd"
            throw BrokerStartError(message: "data directory \(dataDirectory) is in use by \(who) (it holds \(path)); stop that relayd, or give this one its own [storage] path or --data-dir", exitCode: RelayExit.inUse.rawValue)
        }
        _ = ftruncate(fd, 0)
        try? handle.write(contentsOf: Data("\(getpid())\n".utf8))
        return handle
    }
}
