import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `relay_build_info` and the standard Prometheus process metrics
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, `process_max_fds`, `process_start_time_seconds`),
/// read from /proc at scrape time: swift-metrics-extras is not among the
/// vendored packages, and a scrape every few seconds costs a few small
/// reads. On a system without /proc the process lines are left out.
enum ProcessMetrics {
    static func exposition(startTime: Double?) -> String {
        var out = """
        # HELP relay_build_info The relayd build: always 1, its labels name the version.
        # TYPE relay_build_info gauge
        relay_build_info{version="\(RelayVersion.current)"} 1

        """
        func family(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        let stat = selfStat()
        family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", stat?.cpuSeconds)
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", residentBytes())
        family("process_open_fds", "gauge", "Open file descriptors.", openFileDescriptors())
        family("process_max_fds", "gauge", "The open file descriptor limit (RLIMIT_NOFILE).", maxFileDescriptors())
        family("process_start_time_seconds", "gauge", "When the process started, in seconds since the Unix epoch.", startTime)
        return out
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// utime + stime (fields 14 and 15) and starttime (field 22) of
    /// /proc/self/stat, in seconds. The fields are counted after the
    /// command name's closing parenthesis, as the name may hold spaces.
    private static func selfStat() -> (cpuSeconds: Double, startTicks: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state): field n is fields[n - 3].
        guard fields.count > 19, let user = Double(fields[11]), let system = Double(fields[12]),
              let start = Double(fields[19]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard ticks > 0 else { return nil }
        return ((user + system) / ticks, start / ticks)
    }

    /// The process start time (boot time from /proc/stat plus the start
    /// offset), read once: it does not change.
    static func processStartTime() -> Double? {
        guard let stat = selfStat(),
              let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) else { return nil }
        return boot + stat.startTicks
    }

    private static func residentBytes() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return nil }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
    }

    private static func openFileDescriptors() -> Double? {
        // The directory listing itself holds one descriptor while it runs.
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        return Double(max(0, entries.count - 1))
    }

    private static func maxFileDescriptors() -> Double? {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return nil }
        return limit.rlim_cur == rlim_t.max ? nil : Double(limit.rlim_cur)  // rlim_t.max is RLIM_INFINITY
    }

    #if os(Linux)
    private static let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
    #endif
}
