import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Listening ports for servers a test stops and starts again on the same
/// port (relayd's `restart()`, a NATS node relaunched after kill -9).
///
/// Why not port 0: the kernel picks it from the ephemeral range
/// (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default), the
/// same range it gives every outgoing connection. While the server is down,
/// any client socket on the machine (a test's reconnecting client, another
/// test process) may be given that port as its local port, and the restart
/// then fails with EADDRINUSE (EarlySignalTests/sigtermAtOnce did, once).
/// A port below the ephemeral range is never handed out that way; only an
/// explicit bind takes it, and these are spread at random and remembered
/// in this process so two fixtures never share one.
public enum StablePorts {
    /// Ports handed out by this process (never given twice).
    private static let taken = NIOLockedValueBox(Set<Int>())

    /// The kernel's ephemeral range; Linux's default when it cannot be read.
    public static func ephemeralRange() -> ClosedRange<Int> {
        let fallback = 32768...60999
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8) else {
            return fallback
        }
        let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] >= 1, bounds[0] <= bounds[1], bounds[1] <= 65535 else { return fallback }
        return bounds[0]...bounds[1]
    }

    /// Where stable ports are drawn from: below the ephemeral range (from
    /// 10000, above the well-known and most registered service ports), or
    /// above it when the space below is too small.
    public static func candidates() -> ClosedRange<Int> {
        let ephemeral = ephemeralRange()
        if ephemeral.lowerBound - 10_000 >= 2_000 { return 10_000...(ephemeral.lowerBound - 1) }
        if 65535 - ephemeral.upperBound >= 2_000 { return (ephemeral.upperBound + 1)...65535 }
        return 10_000...65535  // no room outside it: still spread at random
    }

    /// `count` distinct ports on 127.0.0.1, each free right now (bound once
    /// with SO_REUSEADDR and closed) and outside the ephemeral range.
    public static func reserve(_ count: Int = 1) throws -> [Int] {
        let range = candidates()
        var ports: [Int] = []
        var tries = 0
        while ports.count < count {
            tries += 1
            guard tries <= 200 * count else {
                throw RelaydFixtureError(message: "no free port in \(range) on 127.0.0.1 after \(tries - 1) tries")
            }
            let port = Int.random(in: range)
            let claimed = taken.withLockedValue { $0.insert(port).inserted }
            guard claimed else { continue }
            if isFree(port) { ports.append(port) }
        }
        return ports
    }

    /// Whether a listener can bind 127.0.0.1:`port` now.
    static func isFree(_ port: Int) -> Bool {
        guard let listener = try? ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port).wait() else { return false }
        try? listener.close().wait()
        return true
    }
}
