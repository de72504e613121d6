#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Raw NIO socket errors in plain sentences with a hint (no "connection
/// reset (error set)" for a refused connection, no SocketAddressError dump
/// for an unknown host name).
extension RelayClientError {
    /// A system call error on connect or on a live connection.
    static func network(_ error: IOError, server: String) -> RelayClientError {
        switch error.errnoCode {
        case ECONNREFUSED:
            return unreachable("cannot connect to the broker at \(server): nothing accepts connections there (connection refused); check that relayd is running and listening on that address and port")
        case ETIMEDOUT:
            return timedOut("cannot connect to the broker at \(server): the connection attempt timed out; check the address and any firewall")
        case EHOSTUNREACH, ENETUNREACH:
            return unreachable("cannot reach the broker at \(server): no route to that host; check the address and the network")
        case ECONNRESET, EPIPE:
            return connectionLost("the broker at \(server) closed the connection abruptly (reset); it may have stopped or restarted")
        default:
            return unreachable("cannot talk to the broker at \(server): \(error.description); check that relayd is running and listening there")
        }
    }

    /// Name resolution and multi-address connect failures (NIOPosix).
    static func network(_ error: any Error, server: String) -> RelayClientError? {
        switch error {
        case let e as SocketAddressError:
            if case .unknown(let host, _) = e {
                return unknownHost(host, server: server)
            }
            return nil
        case let e as NIOConnectionError:
            if let first = e.connectionErrors.first?.error {
                if let io = first as? IOError { return network(io, server: server) }
                return from(first, server: server)
            }
            // No address to try at all: the name did not resolve.
            return unknownHost(e.host, server: server)
        default:
            return nil
        }
    }

    static func unknownHost(_ host: String, server: String) -> RelayClientError {
        unreachable("cannot find the broker's host \"\(host)\" (\(server)): the name does not resolve (DNS); check the spelling of --server, or use an IP address")
    }
}
