import NIOCore
import RelayTLS
import RelayWire

extension FrameClient {
    /// What became of a HELLO sent by a client the broker may refuse at the
    /// TLS layer.
    public enum HelloOutcome: Sendable {
        case welcome(Welcome)
        /// The TLS error that ended the connection (an alert from the peer,
        /// or our own verdict on its certificate).
        case tlsError(TLSError)
        /// Anything else (an ERR frame, a timeout, a plain close).
        case other(String)
    }

    /// Sends HELLO and reports how the connection answered. With TLS 1.3 a
    /// refused client's handshake completes first and the server's alert
    /// follows; it can close the channel before the HELLO is even written,
    /// so a failed write is not the answer: the error the channel closed
    /// with (queued for `next`) is.
    public func helloOutcome(timeout: TimeAmount = .seconds(10)) async -> HelloOutcome {
        var writeFailure = ""
        do {
            try await send(.hello(Hello(maxFrameSize: 64 << 20, sessionID: .none, clientName: "frame-client")))
        } catch {
            writeFailure = "HELLO not written (\(error)); "  // e.g. writeAfterClose: the alert came first
        }
        do {
            switch try await next(timeout: timeout) {
            case .welcome(let welcome): return .welcome(welcome)
            case let frame: return .other(writeFailure + "then \(String(describing: frame))")
            }
        } catch let error as TLSError {
            return .tlsError(error)
        } catch {
            return .other(writeFailure + "then \(error)")
        }
    }

    /// Connects as `client` (the PKI's alice when nil), sends HELLO, closes,
    /// and reports how the connection answered: for tests of clients the
    /// broker should refuse in the TLS handshake.
    public static func helloOutcome(port: Int, pki: TLSTestPKI, as client: TLSTestPKI.Files? = nil) async throws -> HelloOutcome {
        let connection = try await connect(port: port, pki: pki, as: client)
        let outcome = await connection.helloOutcome()
        await connection.close()
        return outcome
    }
}
