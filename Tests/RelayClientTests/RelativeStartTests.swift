import RelayCLISupport
import RelayClient
import RelayCore
import Testing

/// relay-sub's relative start times (issue #18 item 8): `--since 5m` and
/// `--from time:-1h`, converted to an absolute `time` start on the client.
@Suite("CLI relative start times")
struct RelativeStartTests {
    static let now: UInt64 = 1_714_564_800_000_000_000  // 2024-05-01T12:00:00Z

    @Test("--since and --from time:-D take s, m, h and d and subtract them from now")
    func relativeUnits() throws {
        let s: UInt64 = 1_000_000_000
        #expect(try parseSince("30s", now: Self.now) == .time(Self.now - 30 * s))
        #expect(try parseSince("5m", now: Self.now) == .time(Self.now - 300 * s))
        #expect(try parseSince("1h", now: Self.now) == .time(Self.now - 3600 * s))
        #expect(try parseSince("2d", now: Self.now) == .time(Self.now - 2 * 86_400 * s))
        #expect(try parseStartPosition("time:-1h", now: Self.now) == .time(Self.now - 3600 * s))
        // Longer than the epoch: from the beginning of time, not an overflow.
        #expect(try parseSince("100000d", now: 5) == .time(0))
        #expect(try parseStartPosition("time:1970-01-01T00:00:01Z", now: Self.now) == .time(s))
    }

    @Test("an unknown unit, a missing number or a sign is a usage error (exit 64)")
    func invalidIsUsage() {
        for bad in ["5", "5x", "m", "-5m", "5 m", "1.5h", "", "5mm", "99999999999999999999s"] {
            let error = #expect(throws: RelayClientError.self) { try parseSince(bad, now: Self.now) }
            #expect(error?.category == .usage, "--since \(bad)")
            #expect(error?.exitCode == RelayExit.usage.rawValue, "--since \(bad)")
        }
        for bad in ["time:-5x", "time:-", "time:-1.5h"] {
            let error = #expect(throws: RelayClientError.self) { try parseStartPosition(bad, now: Self.now) }
            #expect(error?.category == .usage, "--from \(bad)")
        }
    }
}
