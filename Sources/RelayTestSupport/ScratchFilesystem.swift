import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small file system mounted for one test (a tmpfs, or a loop-mounted
/// ext4 image), so the file system itself runs out of space (ENOSPC from
/// write/pwrite), not a quota inside the program. Mounting needs root
/// (CAP_SYS_ADMIN); the tests run as root, and CI does.
/// ``unmount()`` detaches it even while files on it are still open.
public final class ScratchFilesystem: Sendable {
    public let mountPoint: TemporaryDirectory

    /// Mounts a tmpfs of `size` (mount(8) syntax: "8m") on a new temporary directory.
    public init(tmpfsSize size: String) throws {
        guard geteuid() == 0 else {
            throw ScratchFilesystemError(message: "this test mounts a tmpfs to fill a real file system and must run as root "
                                                  + "(euid \(geteuid())); CI runs as root: run `sudo swift test` or the make target as root")
        }
        #if os(Linux)
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
        image = nil
        #else
        throw ScratchFilesystemError(message: "mounting a tmpfs is done on Linux only (CI runs Linux)")
        #endif
    }

    private init(mountPoint: TemporaryDirectory, image: TemporaryDirectory?) {
        self.mountPoint = mountPoint
        self.image = image
    }

    /// The folder of the loop image, for an ext4 file system.
    private let image: TemporaryDirectory?

    /// Makes an ext4 file system of `megabytes` in an image file and
    /// loop-mounts it: closer to a disk than tmpfs (block allocation,
    /// journal, write-back). No blocks are reserved for root (`-m 0`), as
    /// the tests run as root and would otherwise write into the reserve.
    public static func ext4(megabytes: Int) async throws -> ScratchFilesystem {
        guard geteuid() == 0 else {
            throw ScratchFilesystemError(message: "this test loop-mounts an ext4 image and must run as root (euid \(geteuid())); CI runs as root")
        }
        let folder = try TemporaryDirectory(prefix: "relay-ext4-image")
        let mountPoint = try TemporaryDirectory(prefix: "relay-ext4")
        let image = folder.file("disk.img")
        do {
            guard FileManager.default.createFile(atPath: image, contents: nil),
                  let handle = FileHandle(forWritingAtPath: image) else {
                throw ScratchFilesystemError(message: "cannot create \(image)")
            }
            try handle.truncate(atOffset: UInt64(megabytes) << 20)
            try handle.close()
            try await run("/usr/sbin/mkfs.ext4", ["-q", "-F", "-m", "0", image])
            try await run("/bin/mount", ["-o", "loop", image, mountPoint.path])
        } catch {
            folder.remove()
            mountPoint.remove()
            throw error
        }
        return ScratchFilesystem(mountPoint: mountPoint, image: folder)
    }

    private static func run(_ tool: String, _ arguments: [String]) async throws {
        let child = try await ChildProcess(tool, arguments)
        child.closeStdin()
        let status = await child.waitForExit(timeout: 60)
        guard status == 0 else {
            throw ScratchFilesystemError(message: "\(tool) \(arguments.joined(separator: " ")) failed (\(String(describing: status))):\n\(child.transcript)")
        }
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

    /// Writes `name` until the file system refuses (ENOSPC) and returns the
    /// bytes it took: a failed large write can leave blocks free that a
    /// small write (an audit line) would still get.
    @discardableResult
    public func fillRemaining(_ name: String) throws -> Int {
        guard FileManager.default.createFile(atPath: file(name), contents: nil),
              let handle = FileHandle(forWritingAtPath: file(name)) else {
            throw ScratchFilesystemError(message: "cannot create the filler \(file(name))")
        }
        defer { try? handle.close() }
        let chunk = Data(count: 4096)
        var written = 0
        while (try? handle.write(contentsOf: chunk)) != nil { written += chunk.count }
        return written
    }

    /// Lazily unmounts (MNT_DETACH: works while a killed relayd still holds
    /// files open) and removes the mount point.
    public func unmount() {
        #if os(Linux)
        _ = umount2(path, Int32(MNT_DETACH))
        #endif
        mountPoint.remove()
        image?.remove()  // the loop device keeps the image's inode until it lets go
    }
}

public struct ScratchFilesystemError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
