import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs mounted for one test, so the file system itself runs out
/// of space (ENOSPC from write/pwrite), not a quota inside the program.
/// Mounting needs root (CAP_SYS_ADMIN); the tests run as root, and CI does.
/// ``unmount()`` detaches it even while files on it are still open.
public final class ScratchFilesystem: Sendable {
    public let mountPoint: TemporaryDirectory

    /// Mounts a tmpfs of `size` (mount(8) syntax: "8m") on a new temporary directory.
    public init(tmpfsSize size: String) throws {
        guard geteuid() == 0 else {
            throw ScratchFilesystemError(message: "this test mounts a tmpfs to fill a real file system and must run as root "
                                                  + "(euid \(geteuid())); CI runs as root: run `sudo swift test` or the make target as root")
        }
        let directory = try TemporaryDirectory(prefix: "relay-tmpfs")
        let result = "size=\(size),mode=0755".withCString { options in
            mount("tmpfs", directory.path, "tmpfs", 0, options)
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            directory.remove()
            throw ScratchFilesystemError(message: "mount -t tmpfs -o size=\(size) on \(directory.path) failed: \(reason)")
        }
        mountPoint = directory
    }

    public var path: String { mountPoint.path }
    public func file(_ name: String) -> String { mountPoint.file(name) }

    /// Bytes an unprivileged writer may still allocate.
    public var freeBytes: Int {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return -1 }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }

    /// Writes `bytes` of zeros to `name` (really allocated: tmpfs has no
    /// holes for written data), so removing it later gives the space back.
    public func writeFiller(_ name: String, bytes: Int) throws {
        let chunk = Data(count: 64 << 10)
        guard FileManager.default.createFile(atPath: file(name), contents: nil),
              let handle = FileHandle(forWritingAtPath: file(name)) else {
            throw ScratchFilesystemError(message: "cannot create the filler \(file(name))")
        }
        defer { try? handle.close() }
        var written = 0
        while written < bytes {
            let slice = chunk.prefix(bytes - written)
            try handle.write(contentsOf: slice)
            written += slice.count
        }
    }

    /// Lazily unmounts (MNT_DETACH: works while a killed relayd still holds
    /// files open) and removes the mount point.
    public func unmount() {
        _ = umount2(path, Int32(MNT_DETACH))
        mountPoint.remove()
    }
}

public struct ScratchFilesystemError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
