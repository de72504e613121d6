import Foundation
import NIOCore
import NIOPosix

/// relayd's lifecycle lines ("relayd listening on HOST:PORT", "relayd
/// metrics on http://HOST:PORT/metrics", "relayd stopped") are log lines in
/// the configured format (logfmt or JSON) on stdout: the message text is
/// the same in both, so these find it anywhere in a line.
public enum RelaydLogLine {
    /// The port of a "relayd listening on HOST:PORT" line, or nil for another line.
    public static func listeningPort(_ line: some StringProtocol) -> Int? {
        port(after: "relayd listening on ", in: line)
    }

    /// The port of a "relayd metrics on http://HOST:PORT/metrics" line, or nil.
    public static func metricsPort(_ line: some StringProtocol) -> Int? {
        port(after: "relayd metrics on http://", in: line)
    }

    /// `HOST:PORT` follows `marker` and ends at a quote, space, slash or the line's end.
    private static func port(after marker: String, in line: some StringProtocol) -> Int? {
        guard let start = line.range(of: marker)?.upperBound else { return nil }
        let address = line[start...].prefix { $0 != "\"" && $0 != " " && $0 != "/" }
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...])
    }

    /// The `ts=` field of a logfmt line: when relayd logged it.
    public static func timestamp(_ line: some StringProtocol) -> Date? {
        guard let field = line.split(separator: " ").first(where: { $0.hasPrefix("ts=") }) else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: String(field.dropFirst(3)))
    }

    /// Parses one logfmt line (`key=value key="quoted \"value\""`) into its
    /// fields; nil when it is not logfmt (text outside a pair, an unclosed quote).
    public static func logfmt(_ line: String) -> [String: String]? {
        var fields: [String: String] = [:]
        var rest = Substring(line)
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " }
            if rest.isEmpty { break }
            guard let equals = rest.firstIndex(of: "="), !rest[..<equals].contains(" "), equals != rest.startIndex else { return nil }
            let key = String(rest[..<equals])
            rest = rest[rest.index(after: equals)...]
            if rest.first == "\"" {
                // A JSON string literal: find its closing quote, skipping escapes.
                var index = rest.index(after: rest.startIndex)
                var escaped = false
                while index < rest.endIndex {
                    let character = rest[index]
                    if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { break }
                    index = rest.index(after: index)
                }
                guard index < rest.endIndex else { return nil }
                let literal = rest[rest.startIndex...index]
                guard let value = try? JSONDecoder().decode(String.self, from: Data(literal.utf8)) else { return nil }
                fields[key] = value
                rest = rest[rest.index(after: index)...]
                guard rest.isEmpty || rest.first == " " else { return nil }
            } else {
                let value = rest.prefix { $0 != " " }
                guard !value.contains("\"") && !value.contains("=") else { return nil }
                fields[key] = String(value)
                rest = rest[value.endIndex...]
            }
        }
        return fields.isEmpty ? nil : fields
    }

    /// Parses one JSON-object line into string fields; nil when it is not one.
    public static func json(_ line: String) -> [String: String]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return object.reduce(into: [:]) { out, entry in out[entry.key] = "\(entry.value)" }
    }
}

extension ChildProcess {
    /// Every line written so far, stdout then stderr.
    public var outputLines: [String] { stdoutLines + stderrLines }
}

/// A GET on the metrics listener that reports any status (``RelaydFixture/scrapeMetrics()``
/// insists on 200): for `/readyz`, which answers 503 while not ready.
///
/// The request is written by the channel itself when the connection is up,
/// and the response collected there until relayd closes: the calling task
/// only waits for the result. relayd closes a metrics connection that has
/// not sent its request within `metrics.request_timeout` (5 s) of the
/// accept, and on a loaded machine a test task can resume later than that
/// after its connect ("I/O on closed channel" when it then wrote).
public enum HTTPProbe {
    /// The connect and the whole exchange: generous, as a deadline on a
    /// loaded machine, not a measure of relayd.
    public static let deadline = TimeAmount.seconds(60)

    public static func get(port: Int, path: String, host: String = "127.0.0.1") async throws -> (status: Int, body: String) {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let response = loop.makePromise(of: ByteBuffer.self)
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n"
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(deadline)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(OneExchange(request: request, response: response))
                }
            }
            .connect(host: host, port: port)
        connected.whenFailure { response.fail($0) }
        let expiry = loop.scheduleTask(in: deadline) {
            response.fail(RelaydFixtureError(message: "GET \(path) on \(host):\(port): no complete response within \(deadline.nanoseconds / 1_000_000_000) s"))
            connected.whenSuccess { $0.close(promise: nil) }
        }
        defer { expiry.cancel() }
        let text = String(buffer: try await response.futureResult.get())
        let statusWord = text.split(separator: " ", maxSplits: 2).dropFirst().first
        guard let statusWord, let status = Int(statusWord), let split = text.range(of: "\r\n\r\n") else {
            throw RelaydFixtureError(message: "GET \(path) on \(host):\(port): not an HTTP response: \(text.prefix(200))")
        }
        return (status, String(text[split.upperBound...]))
    }

    /// Writes the request at connect and collects everything until the
    /// server closes (the listener answers one request, then closes).
    private final class OneExchange: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private let request: String
        private let response: EventLoopPromise<ByteBuffer>
        private var received = ByteBuffer()

        init(request: String, response: EventLoopPromise<ByteBuffer>) {
            self.request = request
            self.response = response
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            received.writeBuffer(&chunk)
        }

        func channelInactive(context: ChannelHandlerContext) {
            response.succeed(received)  // a no-op when the deadline or an error came first
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            response.fail(error)
            context.close(promise: nil)
        }
    }
}

extension RelaydFixture {
    /// `/readyz`'s status and body.
    public func readyz() async throws -> (status: Int, body: String) {
        guard let metricsPort else {
            throw RelaydFixtureError(message: "the metrics listener is off; create the fixture with metrics: true")
        }
        return try await HTTPProbe.get(port: metricsPort, path: "/readyz")
    }
}
