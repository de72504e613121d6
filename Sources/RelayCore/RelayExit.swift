/// The one exit-code table of every Relay binary (relayd, relayctl,
/// relay-pub, relay-sub) and of the client library's errors, documented in
/// docs/exit-codes.md. Defined here, in the module every other one depends
/// on, so relayd (RelayBroker), RelayClient and the CLIs (RelayCLISupport)
/// use the same numbers instead of each naming them
/// (`ExitCodeTableTests/definedOnce` keeps it that way).
/// The numbers follow BSD sysexits.h where one fits, so scripts and systemd
/// (`RestartPreventExitStatus=`) can tell "fix the config" from "try again".
public enum RelayExit: Int32, CaseIterable, Sendable {
    /// Done: published, --count reached, config valid, access allowed.
    case ok = 0
    /// A runtime failure after a good start: the connection was lost, the
    /// broker answered with an error (storage full, internal error).
    case failure = 1
    /// Wrong usage: the argument parser's validation failure, a bad topic,
    /// filter or start position (EX_USAGE).
    case usage = 64
    /// A named input file or directory is missing or unreadable: config,
    /// certificate, key, CA bundle (EX_NOINPUT).
    case noInput = 66
    /// The broker cannot be reached, or --timeout elapsed first (EX_UNAVAILABLE).
    case unavailable = 69
    /// The data directory or audit trail is in use by another relayd (EX_TEMPFAIL).
    case inUse = 75
    /// Refused: the TLS handshake failed on a certificate, or the policy
    /// denied the identity or operation (EX_NOPERM).
    case refused = 77
    /// The configuration is invalid: `relayd --check-config`, `relayctl
    /// config check`, and relayd refusing to start on a bad config (EX_CONFIG).
    case invalidConfiguration = 78

    /// One line for docs and `--help` texts.
    public var meaning: String {
        switch self {
        case .ok: return "success"
        case .failure: return "runtime failure after start (connection lost, broker error)"
        case .usage: return "usage error (bad flag, topic, filter or start position)"
        case .noInput: return "a named input file or directory is missing or unreadable (config, cert, key, CA)"
        case .unavailable: return "broker unavailable, or --timeout elapsed"
        case .inUse: return "data directory or audit trail in use by another relayd"
        case .refused: return "refused: TLS handshake or policy denial"
        case .invalidConfiguration: return "configuration invalid"
        }
    }

    /// The short table for a command's `discussion` text.
    public static let helpText = "Exit codes (all Relay binaries, docs/exit-codes.md): "
        + "0 ok, 1 failure after start, 64 usage, 66 input file missing, 69 broker unavailable or --timeout, "
        + "75 data dir or audit trail in use, 77 refused (TLS or policy), 78 invalid configuration."
}
