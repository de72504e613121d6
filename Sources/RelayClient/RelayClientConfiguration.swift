import NIOCore
import RelayTLS
import RelayWire

/// How reconnecting behaves after a connection was lost.
public struct ReconnectPolicy: Sendable, Hashable {
    /// Reconnect at all; false: a lost connection fails everything pending.
    public var enabled: Bool
    /// Also retry when the very first connection attempt fails for a
    /// transient reason (refused, timed out). The CLIs keep this off so a
    /// wrong address fails at once.
    public var retryInitialConnection: Bool
    /// The first delay; each further attempt doubles it, up to ``maximumDelay``.
    public var initialDelay: Duration
    /// The longest delay between two attempts, before jitter.
    public var maximumDelay: Duration
    /// Random spread added to each delay, as a fraction of it (0.2: up to +20%).
    public var jitter: Double
    /// Give up after this many consecutive failed attempts; nil: never.
    public var maximumAttempts: Int?

    /// A policy; the defaults reconnect forever, 50 ms then doubling up to 5 s, with up to 20% jitter.
    public init(enabled: Bool = true, retryInitialConnection: Bool = false, initialDelay: Duration = .milliseconds(50),
                maximumDelay: Duration = .seconds(5), jitter: Double = 0.2, maximumAttempts: Int? = nil) {
        self.enabled = enabled
        self.retryInitialConnection = retryInitialConnection
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.jitter = jitter
        self.maximumAttempts = maximumAttempts
    }

    /// No reconnecting.
    public static let never = ReconnectPolicy(enabled: false)

    /// The delay before attempt `attempt` (1-based), with jitter.
    public func delay(attempt: Int) -> Duration {
        let base = initialDelay * Int(1 << min(max(attempt - 1, 0), 20))
        let capped = min(base, maximumDelay)
        let spread = max(0, jitter) * Double.random(in: 0...1)
        return capped + capped * spread
    }
}

/// Where to connect and as whom. Build it from files
/// (``init(host:port:certificatePath:privateKeyPath:caPath:serverName:)``), from
/// in-memory PEM through a `TLSClientConfiguration` (RelayTLS), or from the
/// CLIs' ``ClientSettings``.
public struct RelayClientConfiguration: Sendable {
    /// The broker's host name or IP address literal.
    public var host: String
    /// The broker's TCP port (relayd's default listener is 7443).
    public var port: Int
    /// Certificate, key, trusted CA and the broker's expected name.
    public var tls: TLSClientConfiguration
    /// Free text for the broker's logs (program and version).
    public var clientName: String
    /// Whether and how to reconnect after a lost connection.
    public var reconnect: ReconnectPolicy
    /// How long one connection attempt may take in all: the TCP connect, the
    /// TLS handshake and HELLO/WELCOME. Past it the attempt fails with an
    /// error whose ``RelayClientError/isTimeout`` is true (exit code 69).
    /// 10 s by default: a TLS handshake and a WELCOME on a loaded host can
    /// take seconds, and a production client would rather wait than fail.
    public var connectTimeout: TimeAmount
    /// How long to wait for WELCOME after the TCP connection is up (within
    /// ``connectTimeout``, which ends the attempt first when it is shorter).
    public var helloTimeout: TimeAmount
    /// How long a connection may stay silent before the client checks it.
    /// When nothing has come from the broker for this long, the client sends
    /// PING (relay-v1 §4.12; the broker answers every PING); when nothing has
    /// come for another interval either, it takes the connection as lost
    /// (``RelayClientError`` with category `.connection`, its message naming
    /// the keep-alive) and reconnects as after any lost connection,
    /// resending unanswered publishes with their ids. A network partition or
    /// a half-open TCP connection (no FIN, no RST ever arrives) is so found
    /// 2 to 3 intervals after the last byte from the broker (the check runs
    /// once per interval): 30 to 45 s with the default of 15 s. `.zero`
    /// turns it off; the connection then waits for TCP, which gives up on
    /// unacknowledged data after about 15 minutes and never on an idle one.
    public var keepaliveInterval: TimeAmount = .seconds(15)
    /// The largest frame this client accepts (sent in HELLO).
    public var maxFrameSize: Int
    /// Most publishes awaiting PUBACK; the broker's `max_in_flight` caps it further.
    public var maxInFlight: Int
    /// Called on the connection's event loop each time the broker refuses a
    /// SUB with a refusal that time may end (`durable_in_use` of a durable,
    /// `storage_unavailable`) and the client will retry it
    /// (``SubscribeRetry``: the code, the attempt, the delay); keep it short.
    /// The retries, 8 of them over about 25 s, ride out a holder that is this
    /// client's own dead connection, or a cluster's stream leader election;
    /// a second live subscriber of the durable, or a storage outage that
    /// lasts, only the user or operator can end. Nil (the default): no report.
    public var onSubscribeRetry: (@Sendable (SubscribeRetry) -> Void)?
    /// The `durable_in_use` retries only; see ``onSubscribeRetry``.
    @available(*, deprecated, renamed: "onSubscribeRetry", message: "onSubscribeRetry reports every SUB retry, with its code")
    public var onDurableInUse: (@Sendable (DurableInUseRetry) -> Void)? {
        get { durableInUseHandler }
        set { durableInUseHandler = newValue }
    }
    /// Behind the deprecated ``onDurableInUse`` (read by the library without a warning).
    var durableInUseHandler: (@Sendable (DurableInUseRetry) -> Void)?

    /// A configuration from TLS settings that may hold in-memory PEM
    /// (a `TLSClientConfiguration`, from RelayTLS); every other setting has a default.
    public init(host: String, port: Int, tls: TLSClientConfiguration, clientName: String = "relay-swift-client",
                reconnect: ReconnectPolicy = ReconnectPolicy(), connectTimeout: TimeAmount = .seconds(10),
                helloTimeout: TimeAmount = .seconds(10), maxFrameSize: Int = FrameLayout.defaultMaxFrameSize,
                maxInFlight: Int = 4096) {
        self.host = host
        self.port = port
        self.tls = tls
        self.clientName = clientName
        self.reconnect = reconnect
        self.connectTimeout = connectTimeout
        self.helloTimeout = helloTimeout
        self.maxFrameSize = maxFrameSize
        self.maxInFlight = maxInFlight
    }

    /// From PEM files; the broker's certificate must carry `host` (DNS name
    /// or IP address), unless `serverName` names what it carries instead.
    public init(host: String, port: Int, certificatePath: String, privateKeyPath: String, caPath: String,
                serverName: String? = nil) {
        self.init(host: host, port: port, tls: TLSClientConfiguration(
            certificateChain: .file(certificatePath), privateKey: .file(privateKeyPath),
            trustRoots: [.file(caPath)], serverName: serverName ?? host))
    }

    /// From settings resolved by the CLIs (flags, environment, profile).
    public init(settings: ClientSettings) throws(RelayClientError) {
        guard let addresses = settings.serverAddresses, let first = addresses.first else {
            throw .usage("server \"\(settings.server)\" is not HOST:PORT or a comma-separated list of them (for example 127.0.0.1:7443 or a:7443,b:7443)")
        }
        self.init(host: first.host, port: first.port, certificatePath: settings.certificate, privateKeyPath: settings.privateKey,
                  caPath: settings.ca)
        servers = addresses
        if let seconds = settings.connectTimeout {
            connectTimeout = .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
        if let seconds = settings.keepalive {
            keepaliveInterval = .nanoseconds(Int64((seconds * 1e9).rounded()))
        }
    }

    /// Every broker address, tried in turn: a failed attempt or a lost
    /// connection moves to the next one (round robin, with the backoff of
    /// ``reconnect``). ``host`` and ``port`` are the first. Setting an empty
    /// list keeps the current one.
    public var servers: [ServerAddress] {
        get { [ServerAddress(host: host, port: port)] + alternateServers }
        set {
            guard let first = newValue.first else { return }
            host = first.host
            port = first.port
            alternateServers = Array(newValue.dropFirst())
        }
    }

    /// The addresses after the first.
    var alternateServers: [ServerAddress] = []

    /// `host:port`, for messages.
    public var server: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
