import Foundation
import Logging

/// relayd's lifecycle lines: the start-up summary, "relayd listening on
/// HOST:PORT", "relayd metrics on http://…/metrics" and "relayd stopped".
/// They are log lines in the configured format like every other line, but
/// on stdout and at `notice` whatever `[log] level` says, so supervisors,
/// scripts and tests always find them (by their text, which is the same in
/// logfmt and JSON).
public enum LifecycleLog {
    static let label = "relayd.lifecycle"

    /// Installs ``StructuredLogHandler`` for every logger of the process.
    public static func bootstrap(_ configuration: BrokerConfiguration) {
        let level = Logger.Level(rawValue: configuration.log.level) ?? .info
        let format: StructuredLogHandler.Format = configuration.log.format == .json ? .json : .logfmt
        LoggingSystem.bootstrap { label in
            label == Self.label
                ? StructuredLogHandler(label: "relayd", format: format, level: min(level, .notice), stream: .stdout)
                : StructuredLogHandler(label: label, format: format, level: level)
        }
    }

    static var logger: Logger { Logger(label: label) }

    /// The summary, then the listeners (the listening line is the cue that
    /// SIGHUP reloads and SIGTERM drains from now on).
    public static func started(_ broker: Broker) {
        let configuration = broker.context.configuration
        let usage = try? broker.context.store.usage()
        let listen = "\(configuration.server.host):\(broker.port)"
        let metrics = broker.metricsServer.map { server in
            "http://\(configuration.metrics.listen?.split(separator: ":").first ?? "127.0.0.1"):\(server.port)/metrics"
        }
        logger.notice("relayd started", metadata: [
            "version": "\(RelayVersion.current)", "config": "\(configuration.sourceFile)",
            "data_dir": "\(configuration.storage.path)",
            "store_bytes": "\(usage.map { String($0.usedBytes) } ?? "unknown")",
            "store_max_bytes": "\(usage.map { String($0.maxBytes) } ?? String(configuration.storage.maxSize))",
            "store_messages": "\(usage.map { String($0.messages) } ?? "unknown")",
            "listen": "\(listen)", "metrics": "\(metrics ?? "off")",
        ])
        logger.notice("relayd listening on \(listen)", metadata: ["address": "\(listen)"])
        if let metrics { logger.notice("relayd metrics on \(metrics)", metadata: ["url": "\(metrics)"]) }
    }

    public static func stopped() {
        logger.notice("relayd stopped")
    }

    /// Logs why the broker could not start (after the config loaded, so in
    /// its format) and returns the error relayd exits with, which says it
    /// was logged: relayd then prints nothing more.
    static func startFailed(_ error: any Error) -> BrokerStartFailure {
        logger.critical("relayd cannot start", metadata: ["error": "\(error)"])
        return BrokerStartFailure(underlying: error)
    }
}

/// The broker did not start; the reason is already in the log.
public struct BrokerStartFailure: Error, CustomStringConvertible {
    public var underlying: any Error
    public var description: String { "\(underlying)" }
}
