// relay-bench-store: the store's throughput and latency figures.
//
//   swift build -c release --product relay-bench-store
//   .build/release/relay-bench-store [data directory] [messages]
//
// The data directory must be on the real disk (not tmpfs): fsync cost is
// the point. Default: ./.relay-bench-store (removed before and after).
import Foundation
import Histogram
import NIOCore
import RelayCore
import RelayStore

#if canImport(Glibc)
import Glibc
#endif

func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func progress(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

func micros(_ ns: UInt64) -> String { String(format: "%.1f µs", Double(ns) / 1000) }

/// A thread-safe latency histogram.
final class Latencies: @unchecked Sendable {
    private let lock = NSLock()
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    func record(_ ns: UInt64) { lock.lock(); _ = histogram.record(max(ns, 1)); lock.unlock() }
    func percentile(_ p: Double) -> UInt64 { lock.lock(); defer { lock.unlock() }; return histogram.valueAtPercentile(p) }
}

let arguments = CommandLine.arguments
let directory = arguments.count > 1 ? arguments[1] : FileManager.default.currentDirectoryPath + "/.relay-bench-store"
let totalMessages = arguments.count > 2 ? Int(arguments[2]) ?? 1_000_000 : 1_000_000
try? FileManager.default.removeItem(atPath: directory)
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }
print("relay-bench-store: data in \(directory)")

var configuration = StoreConfiguration(directory: directory)
configuration.initialMapSize = 1 << 30
configuration.maxMapSize = 8 << 30
let store = try MessageStore.open(configuration)
let publisher = PublisherStamp(principal: "spiffe://bench.example/producer", fingerprint: CertificateFingerprint(w0: 0x9f9f_9f9f_9f9f_9f9f, w1: 0x9f9f_9f9f_9f9f_9f9f, w2: 0x9f9f_9f9f_9f9f_9f9f, w3: 0x9f9f_9f9f_9f9f_9f9f))
let payload = ByteBuffer(repeating: 0x61, count: 128)

// MARK: 1+2. Raw fsync (write 128 B + fsync of a file in the same directory)
// and a single durable append (one in flight), sampled alternately so both
// see the same disk conditions even when other work shares the machine.

let rawFsync = Latencies()
let single = Latencies()
do {
    let path = directory + "/fsync-probe"
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
    guard fd >= 0 else {
        print("cannot create \(path): errno \(errno); pass a writable directory on a real disk")
        exit(1)
    }
    let block = [UInt8](repeating: 0x42, count: 128)
    let topic = try Topic("bench.single")
    let done = DispatchSemaphore(value: 0)
    for i in 0..<1_000 {
        var start = nowNanos()
        _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, 128, off_t(i * 128)) }
        fsync(fd)
        rawFsync.record(nowNanos() - start)

        start = nowNanos()
        store.append([NewMessage(topic: topic, payload: payload, publisher: publisher)]) { _ in done.signal() }
        done.wait()
        single.record(nowNanos() - start)
    }
    close(fd)
    unlink(path)
}
progress("fsync and single appends measured")

// MARK: 3. Durable throughput: 8 producers, batches of 64, up to 32 batches in flight each.

let producers = 8
let batchSize = 64
let window = 32
let perProducer = totalMessages / producers / batchSize * batchSize
let commitLatency = Latencies()
let failures = ManagedCounter()
let throughputStart = nowNanos()
DispatchQueue.concurrentPerform(iterations: producers) { p in
    guard let topic = try? Topic("bench.p\(p)") else { return }
    let inFlight = DispatchSemaphore(value: window)
    let finished = DispatchGroup()
    let batch = [NewMessage](repeating: NewMessage(topic: topic, payload: payload, publisher: publisher), count: batchSize)
    for _ in 0..<(perProducer / batchSize) {
        inFlight.wait()
        finished.enter()
        let start = nowNanos()
        store.append(batch) { results in
            commitLatency.record(nowNanos() - start)
            for case .failure in results { failures.add() }
            inFlight.signal()
            finished.leave()
        }
    }
    finished.wait()
}
let throughputNanos = nowNanos() - throughputStart
let appended = perProducer * producers

progress("throughput measured")

// MARK: 4. Replay from the warm store.

func replay(_ filter: TopicFilter) throws -> (count: Int, seconds: Double) {
    let start = nowNanos()
    var next: UInt64 = 1
    var count = 0
    while true {
        let batch = try store.read(from: next, filter: filter, maxMessages: 4096, maxBytes: 4 << 20)
        count += batch.messages.count
        next = batch.next
        if batch.reachedEnd { break }
    }
    return (count, Double(nowNanos() - start) / 1e9)
}
_ = try replay(TopicFilter("bench.>"))  // warm the page cache
let all = try replay(TopicFilter(">"))
let oneTopic = try replay(TopicFilter("bench.p3"))
let wildcard = try replay(TopicFilter("bench.*"))
store.close()

let fsyncP50 = rawFsync.percentile(50), singleP50 = single.percentile(50)
print("""

raw fsync (write 128 B + fsync)    p50 \(micros(fsyncP50))  p99 \(micros(rawFsync.percentile(99)))
single durable append (1 in flight) p50 \(micros(singleP50))  p99 \(micros(single.percentile(99)))  = \(String(format: "%.2f", Double(singleP50) / Double(max(fsyncP50, 1))))× raw fsync (target ≤ 3×)
durable appends, \(producers) producers × \(window) batches of \(batchSize) in flight, 128 B payloads:
  \(appended) messages in \(String(format: "%.2f", Double(throughputNanos) / 1e9)) s = \(Int(Double(appended) / (Double(throughputNanos) / 1e9))) msgs/s (target ≥ 500000), failures \(failures.value)
  commit (ack) latency per batch    p50 \(micros(commitLatency.percentile(50)))  p99 \(micros(commitLatency.percentile(99)))
replay of \(all.count) messages, filter '>'          \(Int(Double(all.count) / all.seconds)) msgs/s (target ≥ 2000000)
replay of \(wildcard.count) messages, filter 'bench.*'    \(Int(Double(wildcard.count) / wildcard.seconds)) msgs/s
replay of \(oneTopic.count) messages, topic index 'bench.p3' \(Int(Double(oneTopic.count) / oneTopic.seconds)) msgs/s
""")

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
