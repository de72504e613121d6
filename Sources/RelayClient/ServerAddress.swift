/// One broker address, `HOST:PORT` (`[IPv6]:PORT` for an IPv6 literal).
/// A client given several tries them in turn (see
/// ``RelayClientConfiguration/servers``).
public struct ServerAddress: Sendable, Hashable, CustomStringConvertible {
    /// The broker's host name or IP address literal.
    public var host: String
    /// The broker's TCP port.
    public var port: Int

    /// An address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT`; nil when the host is empty or the port is not 1-65535.
    public init?(parsing text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    /// Parses a comma-separated list (`a:7443,b:7443`); nil when any element
    /// is empty or not `HOST:PORT`.
    public static func parseList(_ text: String) -> [ServerAddress]? {
        var addresses: [ServerAddress] = []
        for element in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let address = ServerAddress(parsing: element) else { return nil }
            addresses.append(address)
        }
        return addresses.isEmpty ? nil : addresses
    }

    /// `host:port`, bracketing an IPv6 literal.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
