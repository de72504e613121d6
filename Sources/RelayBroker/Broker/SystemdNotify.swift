import Foundation
import Logging
import NIOCore
import NIOPosix

/// sd_notify(3) without libsystemd: each state ("READY=1", "RELOADING=1",
/// "STOPPING=1") is one datagram to the unix socket named by
/// `$NOTIFY_SOCKET`, which systemd sets for a `Type=notify` service. Without
/// the variable (not under systemd) every call does nothing. An abstract
/// socket (`@name`) is not supported (NIO names unix sockets by path); the
/// notifier then logs once and stays off.
public struct SystemdNotifier: Sendable {
    let socketPath: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger? = nil) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { socketPath = nil; return }
        guard path.hasPrefix("/") else {
            logger?.warning("NOTIFY_SOCKET names an abstract socket; relayd cannot notify systemd (use Type=simple)",
                            metadata: ["notify_socket": "\(path)"])
            socketPath = nil
            return
        }
        socketPath = path
    }

    /// Sends `state` (newline-separated `KEY=value` assignments). A failure
    /// is logged, never fatal: the broker runs the same with or without systemd.
    public func notify(_ state: String, logger: Logger) async {
        guard let socketPath else { return }
        do {
            // SO_PASSCRED makes Linux give the sending socket an (abstract)
            // address, so the datagram names its sender: systemd does not need
            // it, but a receiver that reads the sender's address (NIO's, in the
            // test) drops a datagram from an unnamed socket.
            let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(ChannelOptions.socketOption(.init(rawValue: SO_PASSCRED)), value: 1)
                .connect(unixDomainSocketPath: socketPath).get()
            defer { channel.close(promise: nil) }
            try await channel.writeAndFlush(channel.allocator.buffer(string: state)).get()
        } catch {
            logger.warning("cannot notify systemd", metadata: ["notify_socket": "\(socketPath)", "state": "\(state)", "error": "\(error)"])
        }
    }

    /// "RELOADING=1" with the CLOCK_MONOTONIC time systemd's reload protocol asks for.
    static func reloadingState() -> String {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return "RELOADING=1\nMONOTONIC_USEC=\(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000)"
    }
}
