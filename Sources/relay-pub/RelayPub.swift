import ArgumentParser
import Foundation
import RelayCore
import NIOConcurrencyHelpers
import RelayCLISupport
import RelayClient

/// `relay-pub`: publish messages over mutual TLS.
struct RelayPub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-pub",
        abstract: "Publish messages to a Relay broker over mutual TLS.",
        discussion: """
        Each message is acknowledged only after the broker stored it durably. \
        The broker stamps it with the identity of this client's certificate.

        Examples:
          relay-pub --server 127.0.0.1:7443 --cert alice.pem --key alice.key --ca ca.pem \\
                    --topic orders.eu.created --message '{"id": 1}'
          relay-pub --profile prod --topic logs.app --lines < app.log
          relay-pub --topic sensors.t1 --file reading.bin --header unit=celsius --count 100 --rate 10 --verbose

        \(RelayExit.helpText)
        """,
        version: RelayVersion.description)

    @OptionGroup var client: ClientOptions
    @OptionGroup var keepalive: KeepaliveOption

    @Option(name: .long, help: ArgumentHelp("The topic to publish to (dot-separated tokens).", valueName: "topic"))
    var topic: String

    @Option(name: .long, help: ArgumentHelp("Publish this text.", valueName: "text"))
    var message: String?

    @Option(name: .long, help: ArgumentHelp("Publish the contents of this file.", valueName: "path"))
    var file: String?

    @Flag(name: .long, help: "Publish each line of standard input as one message.")
    var lines = false

    @Option(name: .long, help: ArgumentHelp("Add a header (repeatable).", valueName: "key=value"))
    var header: [String] = []

    @Option(name: .long, help: "How many times to publish --message/--file (with --lines: at most this many lines).")
    var count: Int?

    @Option(name: .long, help: "At most this many messages per second (default: as fast as the broker acknowledges).")
    var rate: Double?

    @Option(name: .long, help: "Give up after this many seconds (connecting, reconnecting and all acknowledgements included), exit 69.")
    var timeout: Double?

    @Flag(name: .long, help: "Print every receipt (sequence, time, duplicate) on standard output.")
    var verbose = false

    func validate() throws {
        let sources = [message != nil, file != nil, lines].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one of --message, --file or --lines") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be a positive number of messages per second") }
        for h in header where !h.contains("=") { throw ValidationError("--header \"\(h)\" is not key=value") }
    }

    func run() async throws {
        let headers = header.map { h -> HeaderField in
            let parts = h.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return HeaderField(key: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
        var fixedPayload: ByteBuffer?
        if let message { fixedPayload = ByteBuffer(string: message) }
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw RelayClientError(category: .usage, message: "cannot read --file \(file); check the path and its permissions",
                                       exitCode: RelayExit.noInput.rawValue)
            }
            fixedPayload = ByteBuffer(bytes: data)
        }
        let configuration = try client.configuration(clientName: "relay-pub", keepalive: keepalive.keepalive)
        let reporter = ConnectionReporter(program: "relay-pub")
        reporter.startWatchdog(timeout: timeout, server: configuration.server) { true }
        let publisher = Publisher(connection: try await reporter.connect(configuration, timeout: timeout))
        let tracker = PublishTracker(verbose: verbose)
        let pacer = Pacer(rate: rate)
        if let fixedPayload {
            for sent in 0..<(count ?? 1) {
                try await pacer.wait()
                if tracker.failure != nil { break }
                try await tracker.waitForRoom(sent: sent)
                publisher.publish(topic: topic, payload: fixedPayload, headers: headers, onReceipt: tracker.record)
            }
        } else {
            var published = 0
            while count.map({ published < $0 }) ?? true, let line = readLine(strippingNewline: true) {
                try await pacer.wait()
                if tracker.failure != nil { break }
                try await tracker.waitForRoom(sent: published)
                publisher.publish(topic: topic, payload: ByteBuffer(string: line), headers: headers, onReceipt: tracker.record)
                published += 1
            }
        }
        do {
            try await publisher.flush()
        } catch {
            await publisher.close()
            throw tracker.failure ?? error
        }
        await publisher.close()
        if let failure = tracker.failure { throw failure }
        if verbose { printError("relay-pub: \(tracker.succeeded) message(s) stored on topic \(topic)") }
    }
}

/// Counts receipts, prints them when verbose, keeps the first failure.
final class PublishTracker: Sendable {
    private let state = NIOLockedValueBox<(succeeded: Int, answered: Int, failure: RelayClientError?)>((0, 0, nil))
    let verbose: Bool

    init(verbose: Bool) { self.verbose = verbose }

    var failure: RelayClientError? { state.withLockedValue { $0.failure } }
    var succeeded: Int { state.withLockedValue { $0.succeeded } }

    /// Bounds memory: at most 65,536 publishes handed over and not yet answered.
    func waitForRoom(sent: Int) async throws {
        while sent - state.withLockedValue({ $0.answered }) >= 65_536 {
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    @Sendable func record(_ result: Result<PublishReceipt, RelayClientError>) {
        switch result {
        case .success(let receipt):
            state.withLockedValue { $0.succeeded += 1; $0.answered += 1 }
            if verbose {
                writeOut(Array(("published sequence=\(receipt.sequence) time=\(RFC3339.format(nanoseconds: receipt.timestamp))"
                    + " duplicate=\(receipt.duplicate)\n").utf8))
            }
        case .failure(let error):
            state.withLockedValue {
                $0.answered += 1
                if $0.failure == nil { $0.failure = error }
            }
        }
    }
}

/// Spaces messages `1/rate` seconds apart (no-op without a rate).
final class Pacer: Sendable {
    private let interval: Duration?
    private let next = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    init(rate: Double?) {
        interval = rate.map { .nanoseconds(Int64(1_000_000_000 / $0)) }
    }

    func wait() async throws {
        guard let interval else { return }
        let now = ContinuousClock.now
        let due = next.withLockedValue { slot -> ContinuousClock.Instant in
            let due = slot ?? now
            slot = max(due, now) + interval
            return due
        }
        if due > now { try await Task.sleep(until: due, clock: .continuous) }
    }
}
