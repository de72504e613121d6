import Foundation
import RelayClient
import RelayCore

/// Relative start times for relay-sub (`--since 5m`, `--from time:-1h`): the
/// client turns them into an absolute `time` start (ns since the epoch) at
/// the moment it parses them, so the broker sees an ordinary §4.6 `time`.
public func parseSince(_ text: String, now: UInt64 = currentTimeNanoseconds()) throws(RelayClientError) -> StartPosition {
    guard let span = relativeSpan(text) else {
        throw RelayClientError(category: .usage, message: "--since must be a whole number and a unit s, m, h or d "
            + "(e.g. --since 5m, --since 2h); got \"\(text)\"")
    }
    return .time(now > span ? now - span : 0)
}

/// `parseStartPosition` with `time:-D` (D as for `--since`) relative to `now`.
public func parseStartPosition(_ text: String, now: UInt64) throws(RelayClientError) -> StartPosition {
    guard text.hasPrefix("time:-") else { return try parseStartPosition(text) }
    guard let span = relativeSpan(String(text.dropFirst("time:-".count))) else {
        throw RelayClientError(category: .usage, message: "--from time:-D takes a whole number and a unit s, m, h or d "
            + "(e.g. time:-1h); got \"\(text)\"")
    }
    return .time(now > span ? now - span : 0)
}

public func currentTimeNanoseconds() -> UInt64 {
    UInt64(max(0, Date().timeIntervalSince1970 * 1e9))
}

/// `5m` → nanoseconds; nil for anything but digits then one of s, m, h, d,
/// or a span that does not fit in 64 bits.
private func relativeSpan(_ text: String) -> UInt64? {
    guard let unit = text.last, let number = UInt64(text.dropLast()),
          text.dropLast().allSatisfy(\.isASCII) else { return nil }
    let seconds: UInt64
    switch unit {
    case "s": seconds = 1
    case "m": seconds = 60
    case "h": seconds = 3600
    case "d": seconds = 86_400
    default: return nil
    }
    let (inSeconds, o1) = number.multipliedReportingOverflow(by: seconds)
    let (nanos, o2) = inSeconds.multipliedReportingOverflow(by: 1_000_000_000)
    return o1 || o2 ? nil : nanos
}
