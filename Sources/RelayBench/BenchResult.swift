import Foundation

/// One scenario's figures; `--json` prints it as one line with snake_case keys.
public struct BenchResult: Codable, Sendable {
    public var scenario: String
    public var client = "relay-swift"
    public var durability: String
    public var size = 0
    public var publishers = 0
    public var subscribers = 0
    public var window = 0
    /// Messages each publisher was asked to publish (connections, for connect/idle).
    public var count = 0
    public var published = 0
    public var acked = 0
    /// Deliveries the subscribers had to receive (acked × subscribers) and did receive (distinct).
    public var expectedDeliveries = 0
    public var delivered = 0
    /// The open loop's offered load over all publishers (`--rate` × publishers); absent for the closed loop.
    public var offeredMsgsPerSec: Double?
    public var publishedMsgsPerSec = 0.0
    public var deliveredMsgsPerSec = 0.0
    /// Payload megabytes (10^6) per second: acknowledged publishes, or deliveries when nothing was published (replay).
    public var mbPerSec = 0.0
    public var publishAckP50Us = 0.0
    public var publishAckP99Us = 0.0
    public var publishAckP999Us = 0.0
    public var e2eP50Us = 0.0
    public var e2eP99Us = 0.0
    public var lost = 0
    public var duplicated = 0
    public var outOfOrder = 0
    public var corrupt = 0
    public var failedPublishes = 0
    /// connect: completed mTLS handshakes (TCP + TLS 1.3 + HELLO/WELCOME) per second.
    public var handshakesPerSec: Double?
    public var connectP50Us: Double?
    public var connectP99Us: Double?
    /// idle: the broker's VmRSS before and after, and the difference per connection.
    public var rssBeforeKb: Int?
    public var rssAfterKb: Int?
    public var rssPerConnectionBytes: Double?
    /// disk: one LMDB commit's two flushes (4 KiB + fdatasync, then 120 B O_DSYNC), in microseconds.
    public var syncP50Us: Double?
    public var syncP99Us: Double?
    public var syncP999Us: Double?
    /// Broker CPU (user + system) during the measured phase, when its pid is known.
    public var brokerCpuS: Double?
    /// This bench process's CPU (user + system) during the measured phase: the load generator shares the machine.
    public var clientCpuS: Double?
    public var elapsedS = 0.0
    public var timedOut = false
    public var errors: [String] = []
    public var ok = false

    public init(scenario: String, durability: String) {
        self.scenario = scenario
        self.durability = durability
    }

    /// Correctness only: nothing lost, duplicated, reordered or corrupt, no error, no timeout.
    public var isCorrect: Bool {
        lost == 0 && duplicated == 0 && outOfOrder == 0 && corrupt == 0 && failedPublishes == 0 && !timedOut && errors.isEmpty
    }

    /// The same figures to 0.1 (rates, microseconds) and 0.001 (seconds, MB/s): more digits are noise.
    public func rounded() -> BenchResult {
        func r(_ value: Double, _ places: Double = 10) -> Double { (value * places).rounded() / places }
        var copy = self
        copy.publishedMsgsPerSec = r(publishedMsgsPerSec)
        copy.deliveredMsgsPerSec = r(deliveredMsgsPerSec)
        copy.mbPerSec = r(mbPerSec, 1000)
        copy.publishAckP50Us = r(publishAckP50Us)
        copy.publishAckP99Us = r(publishAckP99Us)
        copy.publishAckP999Us = r(publishAckP999Us)
        copy.e2eP50Us = r(e2eP50Us)
        copy.e2eP99Us = r(e2eP99Us)
        copy.handshakesPerSec = handshakesPerSec.map { r($0) }
        copy.connectP50Us = connectP50Us.map { r($0) }
        copy.connectP99Us = connectP99Us.map { r($0) }
        copy.rssPerConnectionBytes = rssPerConnectionBytes.map { r($0) }
        copy.syncP50Us = syncP50Us.map { r($0) }
        copy.syncP99Us = syncP99Us.map { r($0) }
        copy.syncP999Us = syncP999Us.map { r($0) }
        copy.brokerCpuS = brokerCpuS.map { r($0, 1000) }
        copy.clientCpuS = clientCpuS.map { r($0, 1000) }
        copy.elapsedS = r(elapsedS, 1000)
        return copy
    }

    public func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(rounded()), let text = String(data: data, encoding: .utf8) else {
            return "{\"scenario\":\"\(scenario)\",\"ok\":false,\"errors\":[\"cannot encode the result\"]}"
        }
        return text
    }
}

/// The human-readable table.
public enum BenchTable {
    public static func render(_ results: [BenchResult]) -> String {
        var lines: [String] = []
        let header = ["scenario", "size", "pub", "sub", "acked msg/s", "deliv msg/s", "MB/s",
                      "ack p50", "ack p99", "ack p99.9", "e2e p50", "e2e p99", "lost", "dup", "ooo", "ok"]
        var rows: [[String]] = [header, ["", "B", "", "", "", "", "", "ms", "ms", "ms", "ms", "ms", "", "", "", ""]]
        var notes: [String] = []
        for r in results {
            rows.append([r.scenario, "\(r.size)", "\(r.publishers)", "\(r.subscribers)", rate(r.publishedMsgsPerSec),
                         rate(r.deliveredMsgsPerSec), String(format: "%.1f", r.mbPerSec),
                         ms(r.publishAckP50Us), ms(r.publishAckP99Us), ms(r.publishAckP999Us),
                         ms(r.e2eP50Us), ms(r.e2eP99Us), "\(r.lost)", "\(r.duplicated)", "\(r.outOfOrder)",
                         r.isCorrect ? "yes" : "NO"])
            if let offered = r.offeredMsgsPerSec {
                notes.append("\(r.scenario): open loop, offered " + String(format: "%.0f", offered)
                             + " msg/s; latencies count from each message's due time")
            }
            if let h = r.handshakesPerSec {
                notes.append("\(r.scenario): " + String(format: "%.0f handshakes/s (mTLS + HELLO/WELCOME), connect p50 %.2f ms, p99 %.2f ms",
                                                             h, (r.connectP50Us ?? 0) / 1000, (r.connectP99Us ?? 0) / 1000))
                if let cpu = r.brokerCpuS, r.count > 0 {
                    notes.append("\(r.scenario): " + String(format: "broker CPU %.0f us, bench client CPU %.0f us per connection",
                                                                 cpu * 1e6 / Double(r.count), (r.clientCpuS ?? 0) * 1e6 / Double(r.count)))
                }
            }
            if let p50 = r.syncP50Us {
                notes.append("\(r.scenario): \(r.count) commit-pattern syncs (4 KiB + fdatasync, then 120 B O_DSYNC): "
                             + String(format: "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", p50 / 1000,
                                      (r.syncP99Us ?? 0) / 1000, (r.syncP999Us ?? 0) / 1000))
            }
            if let per = r.rssPerConnectionBytes {
                notes.append("\(r.scenario): \(r.count) connections, broker RSS \(r.rssBeforeKb ?? 0) KiB -> \(r.rssAfterKb ?? 0) KiB, "
                             + String(format: "%.1f KiB per connection", per / 1024))
            }
            if let cpu = r.brokerCpuS, r.published > 0 {
                notes.append("\(r.scenario) \(r.size) B: " + String(format: "broker CPU %.2f s, %.1f us per published message",
                                                                     cpu, cpu * 1e6 / Double(r.published))
                             + String(format: "; bench client CPU %.2f s, %.1f us per message", r.clientCpuS ?? 0,
                                      (r.clientCpuS ?? 0) * 1e6 / Double(r.published)))
            }
            for error in r.errors { notes.append("\(r.scenario): \(error)") }
            if r.timedOut { notes.append("\(r.scenario): the deadline passed before the run finished") }
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }
            lines.append(cells.joined(separator: "  "))
        }
        return (lines + notes).joined(separator: "\n")
    }

    private static func rate(_ value: Double) -> String { value > 0 ? String(format: "%.0f", value) : "-" }
    private static func ms(_ us: Double) -> String { us > 0 ? String(format: "%.2f", us / 1000) : "-" }
}
