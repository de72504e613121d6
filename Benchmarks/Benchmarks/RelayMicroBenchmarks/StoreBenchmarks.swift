// RelayStore: appending to the LMDB message log, waiting for each commit,
// with relay-bench-store's messages (128-byte payload, one publisher).
//
// The store lives in a fresh directory on the real disk, removed in
// teardown: fsync is most of a durable append, and on tmpfs it costs
// nothing, which would make the figures meaningless (see `baseDirectory`).
import Benchmark
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RelayCore
import RelayStore

final class StoreFixture {
    /// Messages per batch in the batch benchmarks, as relay-bench-store's
    /// producers append them.
    static let batchSize = 64

    let durability: Durability
    /// The messages appended: built in `open()` (setup), like the store.
    private(set) var single: [NewMessage] = []
    private(set) var batch: [NewMessage] = []
    private(set) var store: MessageStore?
    private var directory: String?
    /// One append is in flight at a time: its completion (on the store's
    /// writer thread) records failures here and signals `committed`.
    private let failures = NIOLockedValueBox(0)
    private let committed = DispatchSemaphore(value: 0)

    /// Cheap: registration runs for every benchmark of the target, so the
    /// store is opened only in the benchmark's own setup.
    init(durability: Durability) {
        self.durability = durability
    }

    func open() throws {
        let publisher = PublisherStamp(principal: "spiffe://bench.example/producer", fingerprint: CertificateFingerprint(w0: 0x9f9f_9f9f_9f9f_9f9f, w1: 0x9f9f_9f9f_9f9f_9f9f, w2: 0x9f9f_9f9f_9f9f_9f9f, w3: 0x9f9f_9f9f_9f9f_9f9f))
        let message = NewMessage(topic: try Topic("bench.micro.append"), payload: ByteBuffer(repeating: 0x61, count: 128),
                                 publisher: publisher)
        single = [message]
        batch = [NewMessage](repeating: message, count: Self.batchSize)

        let path = Self.baseDirectory() + "/relay-micro-store-\(UUID().uuidString)"
        var configuration = StoreConfiguration(directory: path)
        configuration.durability = durability
        configuration.initialMapSize = 256 << 20
        configuration.maxMapSize = 4 << 30
        directory = path
        do {
            store = try MessageStore.open(configuration)
        } catch {
            close()  // removes what open created
            throw error
        }
    }

    func close() {
        store?.close()
        store = nil
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
        directory = nil
    }

    /// Appends `messages` and waits until the writer committed them (and,
    /// under `.fsync`, synced them); throws if any message was refused.
    func appendAndWait(_ messages: [NewMessage]) throws {
        guard let store else { throw MicroBenchmarkError("the store is not open") }
        let failures = self.failures, committed = self.committed
        store.append(messages) { results in
            var failed = 0
            for case .failure in results { failed += 1 }
            failures.withLockedValue { $0 += failed }
            committed.signal()
        }
        committed.wait()
        let failed = failures.withLockedValue { $0 }
        guard failed == 0 else { throw MicroBenchmarkError("\(failed) appends failed") }
    }

    /// $TMPDIR (or /tmp) unless it is a tmpfs; then `.build` under the
    /// current directory (the package root when run by `swift package
    /// benchmark`; ignored by git).
    static func baseDirectory() -> String {
        let temporary = NSTemporaryDirectory()
        return isTmpfs(temporary) ? FileManager.default.currentDirectoryPath + "/.build" : temporary
    }

    /// Whether the longest mount point containing `path` is a tmpfs, from
    /// /proc/self/mounts (Glibc's module does not export statfs). False
    /// where that file does not exist (macOS has no tmpfs /tmp).
    static func isTmpfs(_ path: String) -> Bool {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return false }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        var longest = -1
        var type = ""
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let mountPoint = String(fields[1])
            let contains = mountPoint == "/" || resolved == mountPoint || resolved.hasPrefix(mountPoint + "/")
            if contains, mountPoint.count > longest {
                longest = mountPoint.count
                type = String(fields[2])
            }
        }
        return type == "tmpfs"
    }
}

func registerStoreBenchmarks() {
    // fsync-bound: a few ms per commit on a disk, so at most 2,000 samples.
    let durable = Benchmark.Configuration(metrics: relayMetrics, maxDuration: .seconds(2), maxIterations: 2_000)

    // One publisher waiting for each acknowledgement: one fsync per message.
    let oneByOne = StoreFixture(durability: .fsync)
    Benchmark("store: append 1 message, fsync, 1 in flight", configuration: durable) { (_: Benchmark) throws in
        try oneByOne.appendAndWait(oneByOne.single)
    } setup: {
        try oneByOne.open()
    } teardown: {
        oneByOne.close()
    }

    // A group commit of 64: one fsync shared by the batch. Per batch; per
    // message is the figure divided by 64 (StoreFixture.batchSize).
    let grouped = StoreFixture(durability: .fsync)
    Benchmark("store: append a batch of 64, fsync (per batch)", configuration: durable) { (_: Benchmark) throws in
        try grouped.appendAndWait(grouped.batch)
    } setup: {
        try grouped.open()
    } teardown: {
        grouped.close()
    }

    // The same batch without per-commit fsync (durability = "async"): the
    // CPU and LMDB cost of an append, without waiting for the disk.
    let unsynced = StoreFixture(durability: .async(syncInterval: .seconds(1)))
    Benchmark("store: append a batch of 64, async durability (per batch)",
              configuration: .init(metrics: relayMetrics, maxDuration: .seconds(2), maxIterations: 5_000)) { (_: Benchmark) throws in
        try unsynced.appendAndWait(unsynced.batch)
    } setup: {
        try unsynced.open()
    } teardown: {
        unsynced.close()
    }
}
