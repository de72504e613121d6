import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What /proc says about a process: memory (KiB) and open descriptors.
struct ProcessSample {
    var time: Date
    var rssKiB = 0
    /// Anonymous memory (the heap): the leak signal. VmRSS also counts the
    /// LMDB pages relayd has mapped and touched, which grow with the store.
    var anonKiB = 0
    var openFiles = 0

    init(pid: Int32) throws {
        time = Date()
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        for line in status.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let value = Int(parts[1]) else { continue }
            switch parts[0] {
            case "VmRSS:": rssKiB = value
            case "RssAnon:": anonKiB = value
            default: break
            }
        }
        openFiles = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    var summary: String {
        "VmRSS \(rssKiB / 1024) MiB, RssAnon \(anonKiB / 1024) MiB (\(anonKiB) KiB), open fds \(openFiles)"
    }
}

enum ProcessProbe {
    /// Polls until relayd's open descriptors are back to `baseline` (or `timeout` passes); the last sample.
    static func waitForFiles(pid: Int32, baseline: Int, timeout: Double) async throws -> ProcessSample {
        let deadline = Date().addingTimeInterval(timeout)
        var sample = try ProcessSample(pid: pid)
        while sample.openFiles > baseline, Date() < deadline {
            try await Task.sleep(nanoseconds: 250_000_000)
            sample = try ProcessSample(pid: pid)
        }
        return sample
    }

    /// Least-squares slope of RssAnon over time, in KiB per minute.
    static func anonTrend(_ samples: [ProcessSample]) -> Double {
        guard samples.count >= 2, let start = samples.first?.time else { return 0 }
        let xs = samples.map { $0.time.timeIntervalSince(start) / 60 }
        let ys = samples.map { Double($0.anonKiB) }
        let n = Double(samples.count)
        let mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
        var num = 0.0, den = 0.0
        for (x, y) in zip(xs, ys) {
            num += (x - mx) * (y - my)
            den += (x - mx) * (x - mx)
        }
        return den == 0 ? 0 : num / den
    }

    /// Raises the soft open-file limit to cover `needed` descriptors (up to the hard limit); relayd inherits it.
    static func ensureOpenFiles(_ needed: Int) throws -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            throw SoakError("getrlimit(RLIMIT_NOFILE) failed: errno \(errno)")
        }
        let wanted = rlim_t(needed)
        if limit.rlim_cur < wanted {
            let old = limit.rlim_cur
            limit.rlim_cur = min(wanted, limit.rlim_max)
            guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
                throw SoakError("could not raise the open-file limit from \(old) to \(limit.rlim_cur): errno \(errno)")
            }
            print("raised the soft open-file limit from \(old) to \(limit.rlim_cur)")
        }
        guard limit.rlim_cur >= wanted else {
            throw SoakError("the open-file limit is \(limit.rlim_cur) (hard \(limit.rlim_max)) but the soak needs \(needed); "
                            + "raise it (`ulimit -n \(needed)`) or use fewer --connections")
        }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }
}

struct SoakError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
