import NIOCore
import RelayCore
import RelayTLS
import RelayWire

/// Everything the client library throws, in plain words that say what
/// happened and what to do, with a ``Category`` the CLIs turn into exit codes.
public struct RelayClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; decides the CLI exit code.
    public enum Category: Sendable, Hashable {
        /// The broker's policy refused this identity or operation (exit code 77).
        case denied
        /// The request itself is wrong: bad topic, filter, file, setting (exit code 64, 66 for an unreadable file).
        case usage
        /// The broker could not be reached (69), TLS refused the certificate (77), or the
        /// connection was lost or the broker failed after the start (1).
        case connection
    }

    /// Denied, usage or connection: see ``Category``.
    public var category: Category
    /// The broker's error code, when the broker sent one.
    public var code: RelayErrorCode?
    /// The whole explanation, fit to print.
    public var message: String
    /// False when retrying cannot help (the broker refused the certificate,
    /// policy denied the identity, a setting is wrong): reconnecting stops.
    public var isRetryable: Bool
    /// The exit code of the Relay CLIs for this error, from the one table of
    /// every Relay binary (docs/exit-codes.md): 1 failure after start, 64
    /// usage, 66 unreadable input file, 69 broker unavailable or timed out,
    /// 77 refused (TLS handshake or policy). Derived from ``category`` unless
    /// the library knows better (a refused TCP connection is 69, a TLS alert 77).
    public var exitCode: Int32
    /// True when a connection attempt ran out of time: the TCP connect, the
    /// TLS handshake or WELCOME did not come within
    /// ``RelayClientConfiguration/connectTimeout`` (or the TLS and WELCOME
    /// timeouts). The broker may be slow or not a Relay broker at all.
    public var isTimeout: Bool

    /// An error with these values (the library makes its own from what failed).
    public init(category: Category, code: RelayErrorCode? = nil, message: String, isRetryable: Bool = false,
                exitCode: Int32? = nil, isTimeout: Bool = false) {
        self.category = category
        self.code = code
        self.message = message
        self.isRetryable = isRetryable
        self.exitCode = exitCode ?? Self.defaultExitCode(category)
        self.isTimeout = isTimeout
    }

    /// 77 denied, 64 usage, 1 connection (lost after the start).
    static func defaultExitCode(_ category: Category) -> Int32 {
        switch category {
        case .denied: return RelayExit.refused.rawValue
        case .usage: return RelayExit.usage.rawValue
        case .connection: return RelayExit.failure.rawValue
        }
    }

    /// The ``message``.
    public var description: String { message }
}

extension RelayClientError {
    static func usage(_ message: String) -> RelayClientError {
        RelayClientError(category: .usage, message: message)
    }

    static func connectionLost(_ message: String) -> RelayClientError {
        RelayClientError(category: .connection, message: message, isRetryable: true)
    }

    /// The broker could not be reached at all (exit 69): refused, no such host, timed out.
    static func unreachable(_ message: String) -> RelayClientError {
        RelayClientError(category: .connection, message: message, isRetryable: true, exitCode: RelayExit.unavailable.rawValue)
    }

    /// Every one of `servers` failed with a retryable error (`failures`, in
    /// order): exit 69. With one address, that address's own error.
    static func noServerReachable(_ servers: [ServerAddress], _ failures: [RelayClientError]) -> RelayClientError {
        if failures.count == 1, let only = failures.first { return only }
        let tried = servers.map(\.description).joined(separator: ", ")
        return unreachable("none of the \(servers.count) broker addresses could be reached (tried \(tried)): "
            + failures.map(\.message).joined(separator: "; then "))
    }

    /// A connection attempt that ran out of time (exit 69, ``isTimeout``).
    static func timedOut(_ message: String) -> RelayClientError {
        RelayClientError(category: .connection, message: message, isRetryable: true,
                         exitCode: RelayExit.unavailable.rawValue, isTimeout: true)
    }

    /// No TCP connection, TLS handshake and WELCOME within `timeout`
    /// (``RelayClientConfiguration/connectTimeout``); `transportUp`: whether
    /// the TCP connection was made, which says where it stalled.
    static func connectTimedOut(server: String, timeout: TimeAmount, transportUp: Bool) -> RelayClientError {
        let stalled = transportUp
            ? "the TCP connection was made, but the TLS handshake and WELCOME did not finish"
            : "the TCP connection was not made"
        return timedOut("cannot connect to the broker at \(server): \(stalled) within the connect timeout of "
            + "\(timeout.nanoseconds / 1_000_000) ms; check that it is a Relay broker and reachable, "
            + "or raise --connect-timeout (RelayClientConfiguration.connectTimeout)")
    }

    /// The TLS handshake refused a certificate (exit 77).
    static func tlsRefused(_ message: String) -> RelayClientError {
        RelayClientError(category: .connection, message: message, exitCode: RelayExit.refused.rawValue)
    }

    /// The client was closed by its owner.
    public static let closed = RelayClientError(category: .connection,
                                                message: "the connection was closed by this client before the operation finished")

    /// Maps a broker error code (ERR, PUBERR, SUBACK) to plain words.
    public static func broker(rawCode: UInt16, message: String, operation: String? = nil) -> RelayClientError {
        let what = operation.map { "\($0): " } ?? ""
        let detail = message.isEmpty ? "" : " (broker said: \(message))"
        guard let code = RelayErrorCode(rawValue: rawCode) else {
            return RelayClientError(category: .connection, message: "\(what)the broker answered with error code \(rawCode), "
                + "which this client does not know\(detail); upgrade the client", isRetryable: rawCode >= 0x0100)
        }
        let category: Category
        var retryable = false
        switch code {
        case .identityRefused, .notAuthorized, .subscriptionRevoked:
            category = .denied
        case .invalidTopic, .invalidFilter, .invalidHeaders, .payloadTooLarge, .reservedTopic, .invalidStartPosition,
             .duplicateSubscriptionID, .tooManySubscriptions, .durableInUse, .unknownSubscription, .durableFilterMismatch,
             .tooManyDurables, .durableDeleted:
            category = .usage
        case .tooManyConnections, .serverShuttingDown, .internalError, .helloTimeout, .storageFull, .storageFailure, .storageUnavailable,
             .tooManyInFlight:
            category = .connection
            retryable = true
        default:
            category = .connection
        }
        let words: String
        switch code {
        case .identityRefused:
            words = "the broker's policy grants this certificate nothing (identity_refused); ask the operator to add an [[acl.rule]] that matches it (try `relayctl acl explain`)"
        case .notAuthorized:
            words = "the broker's policy does not allow this certificate to do that (not_authorized); ask the operator to grant it (try `relayctl acl explain`)"
        case .certificateRevoked:
            words = "the broker refused this client certificate: it was revoked (certificate_revoked); obtain a new certificate"
        case .certificateExpired:
            words = "the broker refused this client certificate: it has expired (certificate_expired); renew it"
        default:
            words = "\(code.explanation) (\(code.name))"
        }
        var exitCode: Int32?
        switch code {
        case .certificateRevoked, .certificateExpired: exitCode = RelayExit.refused.rawValue
        case .tooManyConnections, .serverShuttingDown, .helloTimeout: exitCode = RelayExit.unavailable.rawValue
        default: break
        }
        return RelayClientError(category: category, code: code, message: what + words + detail, isRetryable: retryable,
                                exitCode: exitCode)
    }

    /// Maps anything a connection attempt or a live connection can fail with.
    static func from(_ error: any Error, server: String) -> RelayClientError {
        switch error {
        case let e as RelayClientError: return e
        case let e as TLSError: return tls(e, server: server)
        case let e as TLSConfigurationError:
            var exitCode: Int32?
            if case .unreadableFile = e { exitCode = RelayExit.noInput.rawValue }
            return RelayClientError(category: .usage, message: "TLS settings are unusable: \(e.description)", exitCode: exitCode)
        case let e as WireError:
            return RelayClientError(category: .connection, code: e.code,
                                    message: "the broker at \(server) sent something this client cannot read (\(e.description)); check that \(server) is a Relay broker of a compatible version")
        case let e as IOError:
            return network(e, server: server)
        case let e as ChannelError:
            switch e {
            case .connectTimeout:
                return timedOut("cannot connect to the broker at \(server): the connection attempt timed out; check the address and any firewall, or raise --connect-timeout")
            default:
                return connectionLost("the connection to the broker at \(server) failed: \(e)")
            }
        default:
            if let mapped = network(error, server: server) { return mapped }
            let text = String(describing: error)
            if text.contains("connection refused") || text.contains("Connection refused") {
                return unreachable("cannot connect to the broker at \(server): connection refused; check that relayd is running and listening there")
            }
            return connectionLost("the connection to the broker at \(server) failed: \(text)")
        }
    }

    /// TLS failures in plain words. With TLS 1.3 a refused client certificate
    /// shows up as an alert on the first read after the handshake.
    public static func tls(_ error: TLSError, server: String) -> RelayClientError {
        switch error {
        case .alertReceived(let code, let description):
            let alert = description.lowercased()
            let name = alert.replacingOccurrences(of: " ", with: "_")
            let words: String
            switch alert {
            case "certificate revoked":
                words = "the broker refused this client certificate: it was revoked (TLS alert certificate_revoked); obtain a new certificate"
            case "unknown ca":
                // OpenSSL sends this alert for an invalid CA in the chain, an
                // exceeded path length and a too long chain as well.
                words = "the broker does not trust this certificate's CA (TLS alert unknown_ca): either its CA is not one the broker "
                    + "lists in [tls] client_ca, or a certificate of the chain may not act as a CA there (not a CA, a path length "
                    + "or chain length limit passed); the broker's log names which"
            case "certificate expired":
                words = "the broker refused this client certificate: it has expired or is not yet valid (TLS alert certificate_expired); renew it"
            case "certificate required":
                words = "the broker requires a client certificate and none was sent (TLS alert certificate_required); pass --cert and --key"
            case "unsupported certificate":
                words = "the broker refused this client certificate: it is not valid for client authentication (TLS alert unsupported_certificate); issue one with the clientAuth extended key usage"
            case "bad certificate", "certificate unknown", "decrypt error":
                words = "the broker refused this client certificate (TLS alert \(name)); check that it and its key belong together and are issued by a CA the broker trusts"
            case "protocol version":
                words = "the broker and this client share no TLS version (TLS alert protocol_version)"
            default:
                words = "the broker refused the TLS connection (TLS alert \(name), code \(code))"
            }
            return tlsRefused(words)
        case .certificateRejected(_, let reason):
            return tlsRefused(
                "this client does not trust the broker's certificate at \(server): \(reason); check that --ca names the CA that issued the broker's certificate and that the server name matches a name in that certificate")
        case .noPeerCertificate:
            return tlsRefused("the broker at \(server) presented no certificate; check that it is a Relay broker")
        case .handshakeFailed(let reason):
            return tlsRefused("the TLS handshake with \(server) failed: \(reason); check that it is a Relay broker (it speaks TLS only)")
        case .handshakeTimedOut(let ms):
            return timedOut("the TLS handshake with \(server) did not finish within \(ms) ms; check that it is a Relay broker and reachable")
        case .unexpectedEOF(let duringHandshake):
            return duringHandshake
                ? RelayClientError(category: .connection, message: "the broker at \(server) closed the connection during the TLS handshake; check that this certificate is issued by a CA the broker trusts", isRetryable: true, exitCode: RelayExit.refused.rawValue)
                : connectionLost("the broker at \(server) closed the connection")
        case .protocolError(let reason):
            return connectionLost("TLS error on the connection to \(server): \(reason)")
        case .writeAfterClose:
            return connectionLost("the connection to \(server) was already closed")
        }
    }
}
