import NIOCore
import NIOPosix

/// A TCP listener on 127.0.0.1 that holds a port for as long as it is open,
/// so a test can start relayd on a port that another process already uses
/// (the EADDRINUSE a real operator meets). It accepts nothing on purpose.
public final class OccupiedPort: Sendable {
    public let port: Int
    private let listener: any Channel

    public static func bind() async throws -> OccupiedPort {
        // No SO_REUSEADDR: relayd's own bind must see the port as taken.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = listener.localAddress?.port else {
            try? await listener.close()
            throw RelaydFixtureError(message: "no local port after binding 127.0.0.1:0")
        }
        return OccupiedPort(port: port, listener: listener)
    }

    private init(port: Int, listener: any Channel) {
        self.port = port
        self.listener = listener
    }

    public func close() async {
        try? await listener.close()
    }
}
