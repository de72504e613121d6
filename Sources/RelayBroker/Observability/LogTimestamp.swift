import Foundation

/// Timestamps for log lines and status text: UTC, milliseconds, and the
/// zone spelled `Z` (`2026-12-03T12:00:00.123Z`), whatever TZ relayd runs
/// under, so lines from several hosts sort and compare as text.
enum LogTimestamp {
    static func format(_ date: Date) -> String {
        date.formatted(style)
    }

    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC") ?? .gmt)
}
