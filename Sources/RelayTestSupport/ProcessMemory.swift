import Foundation

/// Resident memory and open descriptors of a process, from /proc (Linux):
/// what an operator would watch with `ps` and `ls /proc/PID/fd`.
public enum ProcessMemory {
    /// VmRSS in bytes, or nil when the process is gone.
    public static func residentBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }

    /// How many file descriptors the process has open, or nil when it is gone.
    public static func openDescriptors(pid: Int32) -> Int? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
    }
}
