import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `disk`: what the disk under the data directory charges for durability,
/// so latency figures can be read against it. Each sample is the pattern of
/// one LMDB commit: the data pages (one 4 KiB page here) written and
/// `fdatasync`ed, then the 120-byte meta page written through a second,
/// `O_DSYNC` descriptor. A PUBACK in fsync mode waits for at least one of these.
public enum DiskScenario {
    public static func commitSyncs(count: Int, directory: URL) -> BenchResult {
        var result = BenchResult(scenario: "disk", durability: "fsync")
        result.count = count
        let path = directory.appendingPathComponent("relay-bench-disk-\(getpid())").path
        let data = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        guard data >= 0 else {
            result.errors.append("cannot create \(path): \(String(cString: strerror(errno))); pass --work-dir on the disk to measure")
            return result
        }
        defer { close(data); unlink(path) }
        let meta = open(path, O_WRONLY | O_DSYNC)
        guard meta >= 0 else {
            result.errors.append("cannot open \(path) with O_DSYNC: \(String(cString: strerror(errno)))")
            return result
        }
        defer { close(meta) }
        let page = [UInt8](repeating: 0x5A, count: 4096)
        let metaPage = [UInt8](repeating: 0xA5, count: 120)
        var latency = LatencyRecorder()
        let began = BenchClock.now()
        for i in 0..<count {
            let start = BenchClock.now()
            // Pages after the first (which holds the "meta"), cycling over 1 MiB like a growing log.
            let offset = off_t(4096 * (1 + i % 256))
            let wrote = page.withUnsafeBytes { pwrite(data, $0.baseAddress, $0.count, offset) }
            let synced = fdatasync(data)
            let metaWrote = metaPage.withUnsafeBytes { pwrite(meta, $0.baseAddress, $0.count, 0) }
            guard wrote == 4096, synced == 0, metaWrote == 120 else {
                result.errors.append("write or fdatasync failed on \(path): \(String(cString: strerror(errno)))")
                return result
            }
            latency.record(nanoseconds: BenchClock.now() - start)
        }
        result.elapsedS = Double(BenchClock.now() - began) / 1e9
        result.syncP50Us = latency.microseconds(atPercentile: 50)
        result.syncP99Us = latency.microseconds(atPercentile: 99)
        result.syncP999Us = latency.microseconds(atPercentile: 99.9)
        result.ok = result.isCorrect
        return result
    }
}
