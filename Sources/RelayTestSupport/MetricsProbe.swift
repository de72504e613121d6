import Foundation

/// Reads one sample from a relayd metrics listener (for tests that start
/// relayd themselves rather than through ``RelaydFixture``).
public enum MetricsProbe {
    /// The value of `sample` (`name` or `name{labels}`) at 127.0.0.1:`port`, or nil when absent.
    public static func value(port: Int, sample: String) async throws -> Double? {
        let text = try await HTTPGet.fetch(host: "127.0.0.1", port: port, path: "/metrics")
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
